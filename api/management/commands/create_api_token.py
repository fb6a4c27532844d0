"""Make a personal API token from the command line (for a CI set-up script); the token is the last line printed."""

from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandError

from api import tokens


class Command(BaseCommand):
    help = "Make a personal API token for a dashboard user and print it (as the last line)."

    def add_arguments(self, parser):
        parser.add_argument("username", help="A user who has signed in to the dashboard (or made by createsuperuser).")
        parser.add_argument("--name", default="command line", help="What the token is for (default: command line).")
        parser.add_argument(
            "--expires-days", type=int, metavar="N", help="Days until it expires (default: it does not expire)."
        )

    def handle(self, *args, username, name, expires_days=None, **options):
        user = User.objects.filter(username=username).first()
        if user is None:
            raise CommandError(
                f"There is no dashboard user {username!r}: a registry user appears once they have signed in."
            )
        if not user.is_active:
            raise CommandError(f"The user {username!r} is inactive: a token of theirs would not work.")
        if expires_days is not None and not 1 <= expires_days <= tokens.MAX_EXPIRY_DAYS:
            raise CommandError(f"--expires-days must be between 1 and {tokens.MAX_EXPIRY_DAYS}.")
        if not name.strip() or len(name) > 100:
            raise CommandError("--name must be 1 to 100 characters.")
        token, raw = tokens.create_token(user, name.strip(), expires_days)
        expiry = f"expires {token.expires_at:%Y-%m-%d %H:%M} UTC" if token.expires_at else "does not expire"
        self.stdout.write(f"Token {token.name!r} for {username} ({token.prefix}…, {expiry}). It is shown only once:")
        self.stdout.write(raw)
