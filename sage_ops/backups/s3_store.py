"""S3 backend of BackupStore: manual multipart uploads, completed only on commit.

Encryption: by default no encryption header is sent, so the bucket's default encryption applies
(the Terraform stack's bucket uses its customer-managed KMS key; forcing AES256 would override it).
A KMS key asks for SSE-KMS with that key; `sse` forces a mode explicitly. The backups resource
reads and validates both (BackupConfig); here they are values.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from botocore.exceptions import BotoCoreError, ClientError

from sage_ops.backups.store import BackupStore, ObjectWriter, StoredObject
from sage_ops.errors import ConfigError, StoreError
from sage_ops.platforms import aws

PART_SIZE = 16 * 1024 * 1024  # S3 needs >= 5 MiB per part; 10,000 parts allow 160 GiB


def s3_client() -> Any:
    return aws.client("s3")


class S3Store(BackupStore):
    def __init__(
        self,
        url: str,
        client: Any = None,
        *,
        sse: str | None = None,
        kms_key_id: str | None = None,
    ) -> None:
        parts = urlsplit(url)
        if not parts.netloc:
            raise ConfigError(f"S3 store URL must be s3://bucket/prefix/ (got {url!r})")
        self.bucket = parts.netloc
        prefix = parts.path.strip("/")
        self.prefix = f"{prefix}/" if prefix else ""
        self.url = f"s3://{self.bucket}/{self.prefix}"
        self.client = client or s3_client()
        self.encryption = encryption_args(sse, kms_key_id)

    def _key(self, key: str) -> str:
        return self.prefix + key

    def _fail(self, action: str, key: str | None, exc: Exception) -> StoreError:
        where = self.location(key) if key else self.url
        if isinstance(exc, ClientError):
            code = exc.response.get("Error", {}).get("Code", "")
            msg = exc.response.get("Error", {}).get("Message", "")
            if code == "NoSuchBucket":
                return StoreError(f"cannot {action} {where}: bucket {self.bucket!r} does not exist")
            return StoreError(f"cannot {action} {where}: {code} {msg}".rstrip())
        return StoreError(f"cannot {action} {where}: {exc}")

    def open_writer(self, key: str) -> ObjectWriter:
        try:
            # Declare the checksum boto3 computes for each part, so completion can list them.
            upload = self.client.create_multipart_upload(
                Bucket=self.bucket, Key=self._key(key), ChecksumAlgorithm="CRC32", **self.encryption
            )
        except (ClientError, BotoCoreError) as exc:
            raise self._fail("start upload of", key, exc) from None
        return _MultipartWriter(self, key, upload["UploadId"])

    def put_bytes(self, key: str, data: bytes) -> None:
        try:
            self.client.put_object(
                Bucket=self.bucket, Key=self._key(key), Body=data, **self.encryption
            )
        except (ClientError, BotoCoreError) as exc:
            raise self._fail("write", key, exc) from None

    def get_bytes(self, key: str) -> bytes:
        return b"".join(self.iter_chunks(key))

    def iter_chunks(self, key: str) -> Iterator[bytes]:
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"]
            yield from body.iter_chunks(1024 * 1024)
        except (ClientError, BotoCoreError) as exc:
            raise self._fail("read", key, exc) from None

    def objects(self) -> Iterator[StoredObject]:
        paginator = self.client.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix):
                for obj in page.get("Contents", []):
                    rel = obj["Key"][len(self.prefix) :]
                    if rel and "/" not in rel:
                        yield StoredObject(rel, obj["Size"], obj["LastModified"])
        except (ClientError, BotoCoreError) as exc:
            raise self._fail("list", None, exc) from None

    def delete(self, keys: list[str]) -> None:
        errors: list[str] = []
        for start in range(0, len(keys), 1000):  # DeleteObjects takes at most 1000 keys
            batch = [{"Key": self._key(k)} for k in keys[start : start + 1000]]
            try:
                result = self.client.delete_objects(
                    Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True}
                )
            except (ClientError, BotoCoreError) as exc:
                raise self._fail("delete from", None, exc) from None
            errors += [
                f"{e['Key'][len(self.prefix) :]} ({e.get('Code')}: {e.get('Message', '')})"
                for e in result.get("Errors", [])
            ]
        if errors:
            raise StoreError(f"could not delete from {self.url}: {', '.join(errors)}")

    def location(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._key(key)}"


def encryption_args(sse: str | None, kms_key_id: str | None) -> dict[str, str]:
    """Headers for writes: none (bucket default), SSE-KMS with the given key, or `sse`."""
    mode = sse or ("aws:kms" if kms_key_id else None)
    if mode is None:
        return {}
    args = {"ServerSideEncryption": mode}
    if kms_key_id:
        args["SSEKMSKeyId"] = kms_key_id
    return args


class _MultipartWriter(ObjectWriter):
    def __init__(self, store: S3Store, key: str, upload_id: str) -> None:
        self.store = store
        self.key = key
        self.upload_id = upload_id
        self.buffer = bytearray()
        self.parts: list[dict[str, Any]] = []

    def write(self, data: bytes) -> None:
        self.buffer += data
        if len(self.buffer) >= PART_SIZE:
            self._upload_part()

    def _upload_part(self) -> None:
        number = len(self.parts) + 1
        try:
            result = self.store.client.upload_part(
                Bucket=self.store.bucket,
                Key=self.store._key(self.key),
                UploadId=self.upload_id,
                PartNumber=number,
                Body=bytes(self.buffer),
            )
        except (ClientError, BotoCoreError) as exc:
            raise self.store._fail(f"upload part {number} of", self.key, exc) from None
        part = {"PartNumber": number, "ETag": result["ETag"]}
        if result.get("ChecksumCRC32"):
            part["ChecksumCRC32"] = result["ChecksumCRC32"]
        self.parts.append(part)
        self.buffer.clear()

    def commit(self) -> None:
        if self.buffer or not self.parts:
            self._upload_part()
        try:
            self.store.client.complete_multipart_upload(
                Bucket=self.store.bucket,
                Key=self.store._key(self.key),
                UploadId=self.upload_id,
                MultipartUpload={"Parts": self.parts},
            )
        except (ClientError, BotoCoreError) as exc:
            raise self.store._fail("complete upload of", self.key, exc) from None

    def abort(self) -> None:
        self.buffer.clear()
        # The upload may already be gone; a bucket lifecycle rule reaps any straggler.
        with contextlib.suppress(ClientError, BotoCoreError):
            self.store.client.abort_multipart_upload(
                Bucket=self.store.bucket, Key=self.store._key(self.key), UploadId=self.upload_id
            )
