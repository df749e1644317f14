"""The SeaweedFS fixture behaves as the S3 tests rely on: ranges read exactly, multipart ETags as on AWS,
no bucket made behind MLflow's back, and nothing but 127.0.0.1 in its sockets."""

from __future__ import annotations

import os

import psutil
import pytest
from botocore.exceptions import ClientError

pytestmark = pytest.mark.slow

PART = 5 * 1024**2  # S3's smallest part (all but the last)


def test_a_range_comes_back_exactly_and_parts_make_an_aws_etag(seaweed_s3):
    s3, bucket = seaweed_s3.client(), seaweed_s3.new_bucket("fixture-ranges")
    body = os.urandom(2 * PART + 123)
    upload = s3.create_multipart_upload(Bucket=bucket, Key="k")["UploadId"]
    parts = [{"PartNumber": n + 1, "ETag": s3.upload_part(Bucket=bucket, Key="k", UploadId=upload, PartNumber=n + 1,
                                                          Body=body[n * PART:(n + 1) * PART])["ETag"]}
             for n in range(3)]
    s3.complete_multipart_upload(Bucket=bucket, Key="k", UploadId=upload, MultipartUpload={"Parts": parts})

    assert s3.head_object(Bucket=bucket, Key="k")["ETag"].strip('"').endswith("-3")
    start, end = PART - 10, 2 * PART + 5  # across two parts
    got = s3.get_object(Bucket=bucket, Key="k", Range=f"bytes={start}-{end}")
    assert got["ContentRange"] == f"bytes {start}-{end}/{len(body)}"
    assert got["Body"].read() == body[start:end + 1]
    assert not s3.list_multipart_uploads(Bucket=bucket).get("Uploads")


def test_a_missing_bucket_stays_missing(seaweed_s3):
    with pytest.raises(ClientError, match="NoSuchBucket"):
        seaweed_s3.client().put_object(Bucket="fixture-never-made", Key="k", Body=b"x")


def test_it_listens_and_connects_on_loopback_only(seaweed_s3):
    seaweed_s3.client().list_buckets()
    sockets = psutil.Process(seaweed_s3.proc.pid).net_connections(kind="inet")
    assert sockets
    for sock in sockets:
        assert sock.laddr.ip == "127.0.0.1", sock
        assert not sock.raddr or sock.raddr.ip == "127.0.0.1", sock
