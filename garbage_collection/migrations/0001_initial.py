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
            name='GcRun',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('dry_run', models.BooleanField(default=True)),
                ('delete_untagged', models.BooleanField(default=False)),
                ('requested_by', models.CharField(max_length=150)),
                ('address', models.CharField(blank=True, max_length=100)),
                ('status', models.CharField(default='queued', max_length=20)),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('started_at', models.DateTimeField(blank=True, null=True)),
                ('finished_at', models.DateTimeField(blank=True, null=True)),
                ('log', models.TextField(blank=True)),
                ('exit_code', models.IntegerField(blank=True, null=True)),
                ('blobs_marked', models.IntegerField(blank=True, null=True)),
                ('blobs_eligible', models.IntegerField(blank=True, null=True)),
                ('manifests_eligible', models.IntegerField(blank=True, null=True)),
                ('bytes_estimate', models.BigIntegerField(blank=True, help_text="Eligible blobs' sizes, from the index.", null=True)),
                ('used_before', models.BigIntegerField(blank=True, help_text='Storage bytes before (du).', null=True)),
                ('used_after', models.BigIntegerField(blank=True, null=True)),
                ('error', models.TextField(blank=True)),
                ('preview', models.ForeignKey(blank=True, help_text='Its dry run.', null=True, on_delete=django.db.models.deletion.SET_NULL, to='gc.gcrun')),
                ('registry', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='gc_runs', to='catalog.registry')),
            ],
            options={
                'indexes': [models.Index(fields=['registry', '-created_at'], name='gcrun_registry_created')],
            },
            old_table='browser_gcrun',
            old_indexes={'gcrun_registry_created': 'browser_gcr_registr_cac496_idx'},
        ),
        catalog.legacy.AdoptRows(
            model_names=['gcrun'],
            task_paths={'browser.tasks.collect_garbage': 'garbage_collection.tasks.run_gc'},
        ),
    ]
