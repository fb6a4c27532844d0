"""Taking over a database made before the dashboard was split into apps, when one app, `browser`, held every
model. Each app's first migration creates its tables on a new database; on such an older one it renames the
`browser_…` tables instead (rows, keys and indexes stay), relabels their content types, and points the
background tasks still queued at the tasks' new modules."""

from django.db import migrations, models

OLD_APP = "browser"
LAST_OLD_MIGRATION = "0004_garbage_collection"


class CreateOrAdoptModel(migrations.CreateModel):
    """CreateModel that takes over `old_table` when the database has it: the table is renamed instead of created,
    and its Meta indexes are renamed from their `old_indexes` names."""

    def __init__(self, name, fields, options=None, bases=None, managers=None, *, old_table: str, old_indexes=None):
        super().__init__(name, fields, options, bases, managers)
        self.old_table, self.old_indexes = old_table, old_indexes or {}

    def deconstruct(self):
        name, args, kwargs = super().deconstruct()
        return name, args, {**kwargs, "old_table": self.old_table, "old_indexes": self.old_indexes}

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        model = to_state.apps.get_model(app_label, self.name)
        connection = schema_editor.connection
        if self.old_table not in connection.introspection.table_names():
            return super().database_forwards(app_label, schema_editor, from_state, to_state)
        if not self.allow_migrate_model(connection.alias, model):
            return None
        check_old_schema_is_complete(connection)
        schema_editor.alter_db_table(model, self.old_table, model._meta.db_table)
        for index in model._meta.indexes:
            if old_name := self.old_indexes.get(index.name):
                schema_editor.rename_index(model, models.Index(fields=index.fields, name=old_name), index)
        return None

    def describe(self):
        return f"Create model {self.name}, or take over the table {self.old_table}"


def check_old_schema_is_complete(connection) -> None:
    """The renamed tables must have every column the new models expect: the old app's last migration ran."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM django_migrations WHERE app = %s AND name = %s", [OLD_APP, LAST_OLD_MIGRATION])
        if cursor.fetchone() is None:
            raise RuntimeError(
                f"This database was made by an older version whose `{OLD_APP}` migrations stop before "
                f"{LAST_OLD_MIGRATION}: migrate it with that version first, then with this one."
            )


class AdoptRows(migrations.operations.base.Operation):
    """Moves the old app's content types of these models to the new app, and rewrites the database task
    backend's queued and finished tasks from their old paths (browser.tasks.…) to the new ones."""

    reversible = True
    elidable = True

    def __init__(self, model_names: list[str], task_paths: dict[str, str]):
        self.model_names, self.task_paths = model_names, task_paths

    def deconstruct(self):
        return self.__class__.__name__, [], {"model_names": self.model_names, "task_paths": self.task_paths}

    def state_forwards(self, app_label, state):
        pass

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        content_types = from_state.apps.get_model("contenttypes", "ContentType").objects.using(
            schema_editor.connection.alias
        )
        for name in self.model_names:
            if not content_types.filter(app_label=app_label, model=name).exists():
                content_types.filter(app_label=OLD_APP, model=name).update(app_label=app_label)
        results = from_state.apps.get_model("django_tasks_database", "DBTaskResult").objects.using(
            schema_editor.connection.alias
        )
        for old, new in self.task_paths.items():
            results.filter(task_path=old).update(task_path=new)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        pass

    def describe(self):
        return f"Take over the content types and queued tasks of {OLD_APP}'s {', '.join(self.model_names)}"
