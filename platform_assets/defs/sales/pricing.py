"""The orders dataset's transform: each order's amount, and the rule that needs it.

Named in ``datasets/orders.yaml`` (``transform:``); pure Arrow, tested without Dagster.
"""

import pyarrow as pa
import pyarrow.compute as pc

from platform_assets.lib.ingestion.parsing import POSTGRES_TYPE_KEY
from platform_assets.lib.ingestion.transform import Transformed
from platform_assets.lib.ingestion.validation import RuleBroken

AMOUNT = pa.field("amount", pa.decimal128(14, 2), metadata={POSTGRES_TYPE_KEY: b"numeric(14,2)"})


def price_orders(orders: pa.Table) -> Transformed:
    """Add ``amount`` = unit_price * quantity - discount (exact decimals); refuse a discount
    larger than the line total, which would make the amount negative."""
    line_total = pc.multiply(orders.column("unit_price"), orders.column("quantity"))
    discount = orders.column("discount")
    too_large = pc.fill_null(pc.greater(discount, line_total), False)
    amount = pc.subtract(line_total, discount)
    # A refused row's amount may not fit; it is dropped, so give it 0 rather than fail the cast.
    safe = pc.if_else(too_large, pa.scalar(0, amount.type), amount).cast(AMOUNT.type)
    broken = RuleBroken(
        "discount",
        "line_total",
        "discount is larger than unit_price * quantity",
        too_large.to_numpy(zero_copy_only=False),
    )
    return Transformed(orders.append_column(AMOUNT, safe), [broken])
