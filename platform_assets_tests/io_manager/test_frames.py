"""Frames to Arrow a slice at a time: every slice typed like the whole frame."""

from decimal import Decimal

import pandas as pd
import pyarrow as pa

from platform_assets.lib.frames import arrow_to_frame, frame_to_arrow_chunks


def test_slices_share_the_whole_frames_types_even_where_a_slice_is_all_null() -> None:
    frame = pd.DataFrame(
        {
            "id": pd.array([1, None, 3, 4, 5], dtype="Int64"),
            "price": pd.Series([None, None, Decimal("1.50"), None, Decimal("2.25")], dtype=object),
            "label": pd.Series([None, None, "b", "c", None], dtype="str"),
            "attributes": pd.Series([None, None, {"k": [1, 2]}, None, {"k": []}], dtype=object),
        }
    )

    chunks = list(frame_to_arrow_chunks(frame, rows=2))

    assert [chunk.num_rows for chunk in chunks] == [2, 2, 1]
    assert all(chunk.schema.equals(chunks[0].schema) for chunk in chunks)
    assert pa.types.is_decimal(chunks[0].schema.field("price").type)  # though all null in slice 1
    assert chunks[0].schema.field("attributes").type == pa.binary()  # jsonb-ready
    round_trip = arrow_to_frame(pa.concat_tables(chunks))
    pd.testing.assert_frame_equal(round_trip[["id", "label"]], frame[["id", "label"]])
    assert round_trip["price"].tolist()[2:] == [Decimal("1.50"), None, Decimal("2.25")]


def test_an_empty_frame_is_one_empty_chunk() -> None:
    chunks = list(frame_to_arrow_chunks(pd.DataFrame({"id": pd.array([], dtype="Int64")})))
    assert [chunk.num_rows for chunk in chunks] == [0]
    assert chunks[0].schema.field("id").type == pa.int64()
