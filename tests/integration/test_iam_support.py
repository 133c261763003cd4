"""The IAM world's check of moto's behaviour, against the real IAM-enforcing server."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from tests.integration.iam_support import bucket_policy, check_aws_behaviour, iam_world


def test_a_user_allowed_list_bucket_lists_and_the_probe_leaves_nothing_behind() -> None:
    with iam_world() as world:  # runs check_aws_behaviour once already
        check_aws_behaviour(world)
        assert world.client("s3").list_buckets()["Buckets"] == []
        assert [u["UserName"] for u in world.client("iam").list_users()["Users"]] == ["admin"]


def test_the_server_enforces_the_policy_the_check_relies_on() -> None:
    """The check proves something only if moto refuses what a policy does not allow."""
    with iam_world() as world:
        bucket = world.bucket("enforced")
        reader = world.user("get-only", bucket_policy(bucket, ["s3:GetObject"]))
        with pytest.raises(ClientError) as refused:
            world.client("s3", reader).list_objects_v2(Bucket=bucket)
        assert refused.value.response["Error"]["Code"] == "AccessDenied"
