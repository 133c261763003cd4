"""The embedded S3 server helper that the demo and every integration test stand on."""

from __future__ import annotations

from s3csi.demo.s3server import EmbeddedS3Server
from tests.boto_support import boto3_client


def test_server_serves_path_style_s3_and_stops() -> None:
    server = EmbeddedS3Server.start()
    try:
        assert server.endpoint_url.startswith("http://127.0.0.1:")
        client = boto3_client("s3", server)
        client.create_bucket(Bucket="probe")
        client.put_object(Bucket="probe", Key="a/b.txt", Body=b"hello")
        assert client.get_object(Bucket="probe", Key="a/b.txt")["Body"].read() == b"hello"
        server.reset()
        assert client.list_buckets()["Buckets"] == []
    finally:
        server.stop()
    assert server.process.returncode is not None
