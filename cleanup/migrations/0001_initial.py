# The first migration of this app: creates its tables, or takes over the `browser_…` tables of a database
# made before the apps were split (catalog/legacy.py).

import catalog.legacy
import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('catalog', '0001_initial'),
        ('contenttypes', '0002_remove_content_type_name'),
        ('django_tasks_database', '0001_initial'),
    ]

    operations = [
        catalog.legacy.CreateOrAdoptModel(
            name='RetentionPolicy',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('repositories', models.CharField(help_text='Shell pattern, e.g. shop/* or *.', max_length=255)),
                ('keep_newest', models.PositiveIntegerField(blank=True, null=True)),
                ('newest_by', models.CharField(choices=[('pushed', 'pushed'), ('created', 'created')], default='pushed', max_length=10)),
                ('keep_days', models.PositiveIntegerField(blank=True, null=True)),
                ('keep_regex', models.CharField(blank=True, max_length=500)),
                ('protect_regex', models.CharField(blank=True, max_length=500)),
                ('schedule', models.CharField(default='off', max_length=10)),
                ('created_by', models.CharField(blank=True, max_length=150)),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('last_run_at', models.DateTimeField(blank=True, null=True)),
                ('registry', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='retention_policies', to='catalog.registry')),
            ],
            options={
                'verbose_name_plural': 'retention policies',
                'ordering': ['repositories', 'pk'],
            },
            old_table='browser_retentionpolicy',
            old_indexes={},
        ),
        catalog.legacy.CreateOrAdoptModel(
            name='DeleteJob',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('kind', models.CharField(choices=[('tag', 'remove a tag'), ('image', 'delete an image'), ('tags', 'delete tags'), ('repository', 'delete a repository'), ('retention', 'retention run')], max_length=20)),
                ('repository', models.CharField(blank=True, max_length=255)),
                ('requested_by', models.CharField(max_length=150)),
                ('address', models.CharField(blank=True, max_length=100)),
                ('selection', models.JSONField(default=list)),
                ('status', models.CharField(default='queued', max_length=20)),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('started_at', models.DateTimeField(blank=True, null=True)),
                ('finished_at', models.DateTimeField(blank=True, null=True)),
                ('total', models.IntegerField(default=0, help_text='Tags in the selection.')),
                ('done', models.IntegerField(default=0, help_text='Tags handled so far, whatever the outcome.')),
                ('failed', models.IntegerField(default=0)),
                ('bytes_estimate', models.BigIntegerField(default=0, help_text='Freed after garbage collection, from the index.')),
                ('error', models.TextField(blank=True)),
                ('registry', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='delete_jobs', to='catalog.registry')),
                ('policy', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, to='cleanup.retentionpolicy')),
            ],
            options={
                'indexes': [models.Index(fields=['registry', '-created_at'], name='deletejob_registry_created')],
            },
            old_table='browser_deletejob',
            old_indexes={'deletejob_registry_created': 'browser_del_registr_4534f0_idx'},
        ),
        catalog.legacy.CreateOrAdoptModel(
            name='AuditEntry',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('timestamp', models.DateTimeField(db_index=True, default=django.utils.timezone.now)),
                ('source', models.CharField(default='dashboard', max_length=20)),
                ('user', models.CharField(db_index=True, max_length=150)),
                ('address', models.CharField(blank=True, max_length=100)),
                ('action', models.CharField(db_index=True, max_length=30)),
                ('repository', models.CharField(blank=True, db_index=True, max_length=255)),
                ('tags', models.JSONField(default=list)),
                ('digest', models.CharField(blank=True, max_length=80)),
                ('outcome', models.CharField(default='done', max_length=20)),
                ('message', models.TextField(blank=True)),
                ('bytes', models.BigIntegerField(default=0, help_text='Estimated bytes freed after garbage collection.')),
                ('job', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='entries', to='cleanup.deletejob')),
            ],
            options={
                'verbose_name_plural': 'audit entries',
                'ordering': ['-timestamp', '-pk'],
            },
            old_table='browser_auditentry',
            old_indexes={},
        ),
        catalog.legacy.AdoptRows(
            model_names=['retentionpolicy', 'deletejob', 'auditentry'],
            task_paths={'browser.tasks.run_delete_job': 'cleanup.tasks.run_delete_job'},
        ),
    ]
