"""Bad input gets a clear error naming the column and rows; exclusions are reported, never silent."""


import numpy as np
import pandas as pd
import pytest

import bayes_scaling as bs
from bayes_scaling import TransferData
from bayes_scaling.errors import DataError, ExclusionWarning


def table(**over):
    df = pd.DataFrame({"pretraining": ["text"] * 4 + ["code"] * 2, "N": [1e6, 1e6, 1e7, 1e7, 1e6, 1e7],
                       "D_F": [1e5, 1e6, 1e5, 1e6, 1e5, 1e6], "D_T": [2e6, 3e6, 5e6, 8e6, 1e7, 2e7],
                       "lr": [0.1] * 6})
    for k, v in over.items():
        df[k] = v
    return df


def test_valid_table_keeps_extra_columns_and_unit():
    data = TransferData.from_frame(table(), unit="characters")
    assert data.n_used == 6 and data.pretraining == ("text", "code")
    assert "lr" in data.table and data.unit == "characters"
    arr = data.arrays()
    np.testing.assert_allclose(arr["log_D_T"], np.log(table()["D_T"]))
    assert arr["p_idx"].tolist() == [0, 0, 0, 0, 1, 1]


def test_D_E_gives_D_T():
    df = table()
    df["D_E"] = df["D_T"] + df["D_F"]
    data = TransferData.from_frame(df.drop(columns="D_T"))
    np.testing.assert_allclose(data.table["D_T"], table()["D_T"])


@pytest.mark.parametrize("column, values, pattern", [
    ("N", ["1e6", "x", 1e7, 1e7, 1e6, "y"], r"column 'N' has non-numeric values at rows 1, 5"),
    ("N", [1e6, np.nan, 1e7, 1e7, 1e6, 1e7], r"column 'N' has missing or infinite values at rows 1"),
    ("D_F", [1e5, 1e6, np.inf, 1e6, 1e5, 1e6], r"column 'D_F' has missing or infinite values at rows 2"),
    ("N", [1e6, 0, 1e7, -5, 1e6, 1e7], r"column 'N' must be > 0; rows 1, 3"),
    ("D_F", [1e5, 1e6, 1e5, 1e6, 0.0, 1e6], r"column 'D_F' must be > 0; rows 4"),
    ("D_T", [2e6, 3e6, np.nan, 8e6, 1e7, 2e7], r"column 'D_T' has missing or infinite values at rows 2"),
    ("pretraining", ["text", "", "text", None, "code", "code"], r"column 'pretraining' is empty at rows 1, 3"),
])
def test_bad_values_name_column_and_rows(column, values, pattern):
    with pytest.raises(DataError, match=pattern):
        TransferData.from_frame(table(**{column: values}))


def test_missing_columns_and_empty_table():
    with pytest.raises(DataError, match=r"missing column\(s\) 'N'"):
        TransferData.from_frame(table().drop(columns="N"))
    with pytest.raises(DataError, match=r"needs a column 'D_T'.*or 'D_E'"):
        TransferData.from_frame(table().drop(columns="D_T"))
    with pytest.raises(DataError, match="empty"):
        TransferData.from_frame(table().iloc[:0])


def test_inconsistent_D_T_and_D_E():
    df = table()
    df["D_E"] = df["D_T"] + df["D_F"]
    df.loc[3, "D_E"] *= 2
    with pytest.raises(DataError, match=r"'D_T' and 'D_E' disagree at rows 3"):
        TransferData.from_frame(df)


def test_units():
    with pytest.raises(DataError, match="mixes"):
        TransferData.from_frame(table(unit=["tokens"] * 5 + ["characters"]))
    with pytest.raises(DataError, match="not one of"):
        TransferData.from_frame(table(), unit="furlongs")
    assert TransferData.from_frame(table(unit="characters")).unit == "characters"


def test_ossified_rows_are_excluded_with_a_report_and_kept():
    with pytest.warns(ExclusionWarning, match=r"excluded 2 of 6 rows.*text: 1 row\(s\) \[1\].*code: 1 row\(s\) \[5\]"):
        data = TransferData.from_frame(table(D_T=[2e6, -3e5, 5e6, 8e6, 1e7, 0.0]))
    assert data.n_used == 4 and data.n_excluded == 2 and len(data.table) == 6
    assert data.excluded.index.tolist() == [1, 5]
    assert data.excluded["exclusion_reason"].str.contains("ossification").all()
    assert len(data.arrays()["log_D_T"]) == 4
    assert np.all(np.isfinite(data.arrays()["log_D_T"]))


def test_all_rows_excluded_is_an_error():
    with pytest.raises(DataError, match="no row has D_T > 0"):
        TransferData.from_frame(table(D_T=[-1.0] * 6), warn=False)


def test_csv_errors(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        TransferData.from_csv(tmp_path / "nope.csv")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(DataError, match="cannot read"):
        TransferData.from_csv(tmp_path / "empty.csv")
    table().to_csv(tmp_path / "ok.csv", index=False)
    assert TransferData.from_csv(tmp_path / "ok.csv").n_used == 6


def test_example_data_set(example_data):
    meta = bs.datasets.example_metadata()
    assert "SYNTHETIC" in meta["description"]
    assert example_data.pretraining == tuple(meta["truth"]) and example_data.n_excluded == meta["n_ossified"]
    # the bundled file is exactly what the seeded simulator makes
    df, _ = bs.data.simulate_transfer(seed=meta["seed"])
    np.testing.assert_allclose(example_data.table["D_T"], df["D_T"], rtol=1e-9)


def test_dataset_round_trip(example_data):
    back = TransferData.from_dataset(example_data.to_dataset())
    pd.testing.assert_frame_equal(back.table, example_data.table, check_dtype=False)
    assert back.unit == example_data.unit
