"""The embedded S3 server helper that the demo and every integration test stand on."""

from __future__ import annotations

from typing import Any

import boto3

from s3csi.demo.s3server import EmbeddedS3Server


def test_server_serves_path_style_s3_and_stops() -> None:
    server = EmbeddedS3Server.start()
    try:
        assert server.endpoint_url.startswith("http://127.0.0.1:")
        client: Any = boto3.client(
            "s3",
            endpoint_url=server.endpoint_url,
            region_name=server.region,
            aws_access_key_id=server.access_key_id,
            aws_secret_access_key=server.secret_access_key,
        )
        client.create_bucket(Bucket="probe")
        client.put_object(Bucket="probe", Key="a/b.txt", Body=b"hello")
        assert client.get_object(Bucket="probe", Key="a/b.txt")["Body"].read() == b"hello"
        server.reset()
        assert client.list_buckets()["Buckets"] == []
    finally:
        server.stop()
    assert server.process.returncode is not None
