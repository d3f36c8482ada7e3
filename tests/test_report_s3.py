"""The report of a store on object storage: written into the store itself, through pyarrow's S3
filesystem against moto's S3 server (the fixture of `test_store_s3`), and read back with boto3."""

from __future__ import annotations

from test_store_s3 import BUCKET, SWEEPS, keys, s3  # noqa: F401  (s3: the moto server fixture)


def test_report_goes_into_an_s3_store(s3, cli, monkeypatch, tmp_path) -> None:  # noqa: F811
    from rstsweep.store.store import Store
    from rstsweep.testing.synthetic import small_store

    uri = f"s3://{BUCKET}/report-store"
    small_store(Store(uri), SWEEPS, sweeps=["constant"], seeds=1, unfinished={"constant": 0.2})
    monkeypatch.chdir(tmp_path)  # no ./sweeps.yaml: status from the cells table
    result = cli("report", "--store", uri)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip().endswith("report-store/report.html")
    assert "report.html" in keys(s3, "report-store")
    page = s3.get_object(Bucket=BUCKET, Key="report-store/report.html")["Body"].read().decode()
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert "Table 1: SGD and SAM" in page and "<figure><svg" in page
    assert "cells not done:" in page
