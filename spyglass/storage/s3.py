"""Any S3 API (AWS, Backblaze B2, MinIO) through boto3 presigned URLs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, BinaryIO, cast

import boto3
from botocore.client import Config
from botocore.exceptions import BotoCoreError, ClientError

from spyglass.storage.base import Storage, UploadTicket, check_key

if TYPE_CHECKING:  # from the stubs (test extra): not installed to run the app
    from mypy_boto3_s3.type_defs import ObjectIdentifierTypeDef


class S3Storage(Storage):
    kind = "s3"

    def __init__(
        self,
        bucket: str,
        *,
        endpoint_url: str | None,
        region: str | None,
        access_key: str | None,
        secret_key: str | None,
        max_upload_bytes: int,
    ) -> None:
        self.bucket = bucket
        self.max_upload_bytes = max_upload_bytes
        self.client = boto3.client(
            "s3",
            endpoint_url=endpoint_url,
            region_name=region,
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
            config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
        )

    def ensure_bucket(self) -> None:
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError:
            self.client.create_bucket(Bucket=self.bucket)

    def upload_ticket(
        self, key: str, content_type: str, expires_in: int, base_url: str
    ) -> UploadTicket:
        url = self.client.generate_presigned_url(
            "put_object",
            Params={"Bucket": self.bucket, "Key": check_key(key), "ContentType": content_type},
            ExpiresIn=expires_in,
        )
        return UploadTicket(
            url=url,
            key=key,
            method="PUT",
            headers={"Content-Type": content_type},
            expires_at=datetime.now(UTC) + timedelta(seconds=expires_in),
        )

    def download_url(self, key: str, filename: str, expires_in: int, base_url: str) -> str:
        return self.client.generate_presigned_url(
            "get_object",
            Params={
                "Bucket": self.bucket,
                "Key": check_key(key),
                "ResponseContentDisposition": f'attachment; filename="{filename}"',
            },
            ExpiresIn=expires_in,
        )

    def size(self, key: str) -> int | None:
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=check_key(key))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}:
                return None
            raise
        return int(head["ContentLength"])

    def read(self, key: str) -> bytes:
        return self.client.get_object(Bucket=self.bucket, Key=check_key(key))["Body"].read()

    def read_prefix(self, key: str, size: int) -> bytes:
        if size <= 0:
            return b""
        answer = self.client.get_object(
            Bucket=self.bucket, Key=check_key(key), Range=f"bytes=0-{size - 1}"
        )
        return answer["Body"].read()

    def open(self, key: str) -> BinaryIO:
        body = self.client.get_object(Bucket=self.bucket, Key=check_key(key))["Body"]
        return cast(BinaryIO, body)

    def write(self, key: str, data: bytes, content_type: str) -> None:
        self.client.put_object(
            Bucket=self.bucket, Key=check_key(key), Body=data, ContentType=content_type
        )

    def delete_prefix(self, prefix: str) -> int:
        deleted = 0
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            objects: list[ObjectIdentifierTypeDef] = [
                {"Key": o["Key"]} for o in page.get("Contents", [])
            ]
            if objects:
                self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": objects})
                deleted += len(objects)
        return deleted

    def health(self) -> dict[str, Any]:
        try:
            self.client.head_bucket(Bucket=self.bucket)
            return {"status": "ok", "backend": self.kind}
        except (BotoCoreError, ClientError) as exc:
            return {"status": "error", "backend": self.kind, "detail": type(exc).__name__}
