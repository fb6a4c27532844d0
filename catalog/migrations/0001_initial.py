# The first migration of this app: creates its tables, or takes over the `browser_…` tables of a database
# made before the apps were split (catalog/legacy.py).

import catalog.legacy
import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('contenttypes', '0002_remove_content_type_name'),
        ('django_tasks_database', '0001_initial'),
    ]

    operations = [
        catalog.legacy.CreateOrAdoptModel(
            name='Blob',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('digest', models.CharField(max_length=80, unique=True)),
                ('size', models.BigIntegerField()),
                ('media_type', models.CharField(blank=True, max_length=200)),
            ],
            old_table='browser_blob',
            old_indexes={},
        ),
        catalog.legacy.CreateOrAdoptModel(
            name='Manifest',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('digest', models.CharField(max_length=80, unique=True)),
                ('media_type', models.CharField(max_length=200)),
                ('is_index', models.BooleanField(default=False)),
                ('size', models.BigIntegerField(help_text='Compressed size: config and layers, each blob counted once.')),
                ('created', models.DateTimeField(blank=True, db_index=True, null=True)),
                ('platform', models.CharField(blank=True, help_text='os/architecture/variant of an image.', max_length=100)),
                ('platforms', models.JSONField(default=list, help_text="For an index: its images' platforms.")),
                ('has_attestations', models.BooleanField(default=False)),
                ('config_digest', models.CharField(blank=True, max_length=80)),
                ('labels', models.JSONField(default=dict)),
                ('error', models.TextField(blank=True, help_text='Why the manifest could not be read in full.')),
                ('indexed_at', models.DateTimeField(default=django.utils.timezone.now)),
            ],
            old_table='browser_manifest',
            old_indexes={},
        ),
        catalog.legacy.CreateOrAdoptModel(
            name='Registry',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('name', models.CharField(max_length=100)),
                ('url', models.URLField(max_length=500, unique=True)),
                ('last_reconciled_at', models.DateTimeField(blank=True, null=True)),
                ('tag_delete', models.CharField(blank=True, help_text='native (3.x), throwaway (2.x) or unknown.', max_length=20)),
                ('delete_status', models.CharField(blank=True, help_text='enabled, disabled or read-only.', max_length=20)),
                ('capabilities_checked_at', models.DateTimeField(blank=True, null=True)),
            ],
            options={
                'verbose_name_plural': 'registries',
            },
            old_table='browser_registry',
            old_indexes={},
        ),
        catalog.legacy.CreateOrAdoptModel(
            name='ManifestBlob',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('position', models.IntegerField(help_text='-1 for the config blob, then the layers in order.')),
                ('blob', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, to='catalog.blob')),
                ('manifest', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, to='catalog.manifest')),
            ],
            options={
                'constraints': [models.UniqueConstraint(fields=('manifest', 'position'), name='manifest_blob_position')],
            },
            old_table='browser_manifestblob',
            old_indexes={},
        ),
        catalog.legacy.CreateOrAdoptModel(
            name='ManifestChild',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('platform', models.CharField(blank=True, max_length=100)),
                ('is_attestation', models.BooleanField(default=False)),
                ('child', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='index_links', to='catalog.manifest')),
                ('index', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='child_links', to='catalog.manifest')),
            ],
            options={
                'constraints': [models.UniqueConstraint(fields=('index', 'child'), name='index_child')],
            },
            old_table='browser_manifestchild',
            old_indexes={},
        ),
        catalog.legacy.CreateOrAdoptModel(
            name='RegistryEvent',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('event_id', models.CharField(max_length=100, unique=True)),
                ('action', models.CharField(max_length=20)),
                ('repository', models.CharField(max_length=255)),
                ('tag', models.CharField(blank=True, max_length=128)),
                ('digest', models.CharField(blank=True, max_length=80)),
                ('media_type', models.CharField(blank=True, max_length=200)),
                ('actor', models.CharField(blank=True, max_length=150)),
                ('address', models.CharField(blank=True, max_length=100)),
                ('timestamp', models.DateTimeField(blank=True, null=True)),
                ('received_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('registry', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='events', to='catalog.registry')),
            ],
            options={
                'indexes': [models.Index(fields=['repository', '-received_at'], name='event_repository_received')],
            },
            old_table='browser_registryevent',
            old_indexes={'event_repository_received': 'browser_reg_reposit_1325f3_idx'},
        ),
        catalog.legacy.CreateOrAdoptModel(
            name='Repository',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('name', models.CharField(max_length=255)),
                ('synced_at', models.DateTimeField(blank=True, null=True)),
                ('registry', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='repositories', to='catalog.registry')),
            ],
            options={
                'verbose_name_plural': 'repositories',
                'constraints': [models.UniqueConstraint(fields=('registry', 'name'), name='registry_repository')],
            },
            old_table='browser_repository',
            old_indexes={},
        ),
        catalog.legacy.CreateOrAdoptModel(
            name='SyncRun',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('kind', models.CharField(choices=[('full', 'full'), ('repository', 'repository')], max_length=20)),
                ('repository', models.CharField(blank=True, max_length=255)),
                ('status', models.CharField(default='running', max_length=20)),
                ('started_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('finished_at', models.DateTimeField(blank=True, null=True)),
                ('repositories_total', models.IntegerField(default=0)),
                ('repositories_done', models.IntegerField(default=0)),
                ('manifests_fetched', models.IntegerField(default=0)),
                ('errors', models.JSONField(default=list)),
                ('registry', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='sync_runs', to='catalog.registry')),
            ],
            options={
                'indexes': [models.Index(fields=['registry', '-started_at'], name='syncrun_registry_started')],
            },
            old_table='browser_syncrun',
            old_indexes={'syncrun_registry_started': 'browser_syn_registr_91fa2c_idx'},
        ),
        catalog.legacy.CreateOrAdoptModel(
            name='Tag',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('name', models.CharField(max_length=128)),
                ('first_seen', models.DateTimeField(default=django.utils.timezone.now)),
                ('pushed_at', models.DateTimeField(db_index=True, default=django.utils.timezone.now, help_text='When it last moved.')),
                ('last_seen', models.DateTimeField(default=django.utils.timezone.now)),
                ('manifest', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='tags', to='catalog.manifest')),
                ('repository', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='tags', to='catalog.repository')),
            ],
            options={
                'indexes': [models.Index(fields=['repository', 'pushed_at'], name='tag_repository_pushed')],
                'constraints': [models.UniqueConstraint(fields=('repository', 'name'), name='repository_tag')],
            },
            old_table='browser_tag',
            old_indexes={'tag_repository_pushed': 'browser_tag_reposit_2dbf68_idx'},
        ),
        migrations.AddField(
            model_name='manifest',
            name='blobs',
            field=models.ManyToManyField(related_name='manifests', through='catalog.ManifestBlob', to='catalog.blob'),
        ),
        migrations.AddField(
            model_name='manifest',
            name='children',
            field=models.ManyToManyField(related_name='indexes', through='catalog.ManifestChild', through_fields=('index', 'child'), to='catalog.manifest'),
        ),
        catalog.legacy.AdoptRows(
            model_names=['blob', 'manifest', 'registry', 'manifestblob', 'manifestchild', 'registryevent', 'repository', 'syncrun', 'tag'],
            task_paths={'browser.tasks.apply_delete': 'catalog.tasks.apply_delete', 'browser.tasks.apply_push': 'catalog.tasks.apply_push', 'browser.tasks.reconcile_registry': 'catalog.tasks.reconcile_registry', 'browser.tasks.sync_repository': 'catalog.tasks.sync_repository'},
        ),
    ]
