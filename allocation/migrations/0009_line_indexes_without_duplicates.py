"""Two indexes that only repeated others, dropped; each line and part written paid for them.

- ``allocation_allocation.line_id`` had an index of its own, and the unique
  constraint (line_id, batch_id) starts with it: that one serves both.
- ``allocation_orderline.sku`` had two, from the foreign key's ``db_index``:
  a plain one and, on PostgreSQL, a ``varchar_pattern_ops`` copy for LIKE that
  a "C" column does not need. Now one, ``orderline_sku_idx``.
"""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("allocation", "0008_batch_with_stock_in_preference_order"),
    ]

    operations = [
        migrations.AlterField(
            model_name="allocation",
            name="line",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="parts",
                to="allocation.orderline",
            ),
        ),
        migrations.AlterField(
            model_name="orderline",
            name="product",
            field=models.ForeignKey(
                db_column="sku",
                db_index=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="lines",
                to="allocation.product",
            ),
        ),
        migrations.AddIndex(
            model_name="orderline",
            index=models.Index(fields=["product"], name="orderline_sku_idx"),
        ),
    ]
