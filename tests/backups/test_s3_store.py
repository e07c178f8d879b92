"""The S3 backend against a real (moto) S3 server: what ends up in the bucket is the assertion.

One moto server per session, a fresh bucket per test. sage_ops builds its own boto3 client from
the environment (AWS_ENDPOINT_URL etc.), exactly as in production; the tests inspect the bucket
through a separate client.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import os
import re
import secrets
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import boto3
import pytest
from botocore.exceptions import ClientError

from sage_ops import postgres
from sage_ops.backups import s3_store
from sage_ops.backups.dump import backup_database
from sage_ops.backups.manifest import Manifest, manifest_key
from sage_ops.backups.resources import KMS_KEY, SSE, BackupConfig
from sage_ops.backups.retention import apply_retention
from sage_ops.backups.s3_store import S3Store
from sage_ops.backups.unrecorded import sweep_unrecorded
from sage_ops.backups.verify import verify_backup
from sage_ops.errors import ConfigError, StoreError
from sage_ops.postgres import PgTarget
from tests import pg
from tests.backups import s3 as moto_s3

PREFIX = "nightly/"
MIB = moto_s3.MIB
MIN_PART = 5 * MIB  # S3's (and moto's) minimum size of every part but the last
BACKUP_KEY = re.compile(r"^backup_\d{8}_\d{6}\.sql\.gz$")
FOOTER = b"-- PostgreSQL database dump complete"
# ~10 MB of base64 text: ~7.6 MiB once gzipped (base64 is ~6 bits of entropy per byte), so with
# 5 MiB parts the dump is one part uploaded while pg_dump streams plus a last one on commit.
BLOB_ROWS, BLOB_BYTES = 2500, 3000


# --- fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def moto() -> Iterator[moto_s3.MotoS3]:
    with moto_s3.moto_server() as server:
        yield server


@pytest.fixture
def s3(moto: moto_s3.MotoS3, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Environment pointing boto3 at moto; returns an independent client for assertions."""
    moto_s3.apply_env(
        moto_s3.aws_env(moto.endpoint),
        monkeypatch.setenv,
        lambda name: monkeypatch.delenv(name, raising=False),
    )
    return moto_s3.client(moto.endpoint, max_pool_connections=16)


@pytest.fixture
def bucket(s3: Any) -> str:
    return moto_s3.make_bucket(s3)


@pytest.fixture
def s3store(s3: Any, bucket: str, moto: moto_s3.MotoS3) -> S3Store:
    store = S3Store(f"s3://{bucket}/{PREFIX}")
    # The store's client comes from the environment; never let a test reach real AWS.
    assert store.client.meta.endpoint_url == moto.endpoint
    return store


@pytest.fixture
def small_parts(monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(s3_store, "PART_SIZE", MIN_PART)
    return MIN_PART


@pytest.fixture(scope="module")
def big_source_db(pg_server: PgTarget) -> Iterator[PgTarget]:
    """The sample database plus a table of incompressible text, so the gzipped dump spans 2
    parts. Module-scoped (the backups only read it): it is the slowest fixture here."""
    with pg.sample_database(pg_server) as db:
        with postgres.connect(db) as conn:
            conn.execute("CREATE TABLE blobs (id integer PRIMARY KEY, payload text NOT NULL)")
            with conn.cursor() as cur, cur.copy("COPY blobs (id, payload) FROM STDIN") as copy:
                for i in range(BLOB_ROWS):
                    copy.write_row((i, base64.b64encode(os.urandom(BLOB_BYTES)).decode()))
        yield db


def _manifest(s3: Any, bucket: str, key: str) -> dict[str, Any]:
    return dict(json.loads(moto_s3.read_object(s3, bucket, PREFIX + manifest_key(key))))


# --- 1. a full backup -----------------------------------------------------------------------


def test_backup_publishes_encrypted_multipart_dump_and_manifest(
    s3: Any, bucket: str, s3store: S3Store, big_source_db: PgTarget, small_parts: int
) -> None:
    # Real S3 applies SSE-S3 to every bucket without another default; moto needs it spelled out.
    _bucket_default(s3, bucket, {"SSEAlgorithm": "AES256"})
    manifest = backup_database(big_source_db, s3store)

    key = manifest.key
    assert BACKUP_KEY.match(key)
    assert moto_s3.all_keys(s3, bucket) == [PREFIX + key, PREFIX + manifest_key(key)]
    assert moto_s3.open_uploads(s3, bucket) == []

    head = s3.head_object(Bucket=bucket, Key=PREFIX + key)
    # No header was sent: the bucket's default encryption applies.
    assert head["ServerSideEncryption"] == "AES256"
    assert (
        s3.head_object(Bucket=bucket, Key=PREFIX + manifest_key(key))["ServerSideEncryption"]
        == "AES256"
    )
    # A multipart object's ETag is "<md5 of part md5s>-<part count>".
    parts = int(head["ETag"].strip('"').rsplit("-", 1)[1])
    # Exactly 2: the failure test below relies on part 2 being the last (uploaded by commit).
    assert parts == 2, f"expected a multipart upload of 2 parts, ETag {head['ETag']}"
    for number in range(1, parts):  # every part but the last honours the 5 MiB minimum
        part = s3.head_object(Bucket=bucket, Key=PREFIX + key, PartNumber=number)
        assert part["ContentLength"] >= MIN_PART

    body = moto_s3.read_object(s3, bucket, PREFIX + key)
    stored = _manifest(s3, bucket, key)
    assert stored == json.loads(manifest.to_json())
    assert stored["key"] == key
    assert stored["format"] == "plain"
    assert stored["created_by"] == "sage_ops"
    assert stored["verification"]["status"] == "pending"
    assert stored["size"] == len(body) == head["ContentLength"] > MIN_PART
    assert stored["sha256"] == hashlib.sha256(body).hexdigest()
    assert stored["row_counts"]["public.blobs"] == BLOB_ROWS
    assert stored["row_counts"]["public.messages"] == 2000

    sql = gzip.decompress(body)  # every gzip member, as gunzip reads it
    assert stored["raw_bytes"] == len(sql)
    assert sql.startswith(b"--\n-- PostgreSQL database dump\n")
    assert b"CREATE TABLE public.blobs" in sql
    assert b"COPY public.blobs (id, payload) FROM stdin;" in sql
    assert FOOTER in sql[-200:]


# --- 2. S3 fails mid-upload -----------------------------------------------------------------


@pytest.mark.parametrize(
    "failing_part",
    [
        pytest.param(1, id="part1-while-streaming"),
        # The last part is uploaded by _MultipartWriter.commit(), outside BackupStore.writing()'s
        # abort handler: see the bug note in the report (commit must abort on any failure).
        pytest.param(2, id="part2-last-part-on-commit"),
    ],
)
def test_upload_failure_publishes_nothing_and_aborts_the_upload(
    s3: Any,
    bucket: str,
    s3store: S3Store,
    big_source_db: PgTarget,
    small_parts: int,
    failing_part: int,
) -> None:
    attempted: list[int] = []

    def fail_part(params: dict[str, Any], **_: Any) -> None:
        number = int(params["query_string"]["partNumber"])
        attempted.append(number)
        if number == failing_part:
            raise ClientError(
                {"Error": {"Code": "InternalError", "Message": "We encountered an internal error"}},
                "UploadPart",
            )

    # The store's real client with one fault injected: the request never leaves botocore.
    s3store.client.meta.events.register("before-call.s3.UploadPart", fail_part)

    with pytest.raises(StoreError) as caught:
        backup_database(big_source_db, s3store)

    assert attempted == list(range(1, failing_part + 1))
    message = str(caught.value)
    assert f"upload part {failing_part} of s3://{bucket}/{PREFIX}backup_" in message
    assert "InternalError" in message
    assert moto_s3.all_keys(s3, bucket) == []  # neither the dump nor a manifest
    assert moto_s3.open_uploads(s3, bucket) == []  # aborted, no parts left to bill


# --- 3. missing bucket ----------------------------------------------------------------------


def test_missing_bucket_is_a_clear_error_and_creates_nothing(s3: Any, source_db: PgTarget) -> None:
    name = f"sage-ops-missing-{secrets.token_hex(6)}"
    store = S3Store(f"s3://{name}/{PREFIX}")

    with pytest.raises(StoreError, match=rf"bucket '{name}' does not exist"):
        backup_database(source_db, store)
    # The writer path too (bucket deleted between listing and upload).
    with pytest.raises(StoreError, match=rf"bucket '{name}' does not exist"):
        store.open_writer("backup_20240101_000000.sql.gz")

    assert not moto_s3.bucket_exists(s3, name)


# --- 4. objects() paginates, delete() batches ----------------------------------------------


def test_objects_and_delete_cover_more_than_1000_objects(
    s3: Any, bucket: str, s3store: S3Store
) -> None:
    count = 1005  # more than one 1000-key page, and more than one DeleteObjects batch
    bodies = {f"obj_{i:05d}.txt": str(i).encode() for i in range(count)}

    def put(key: str) -> None:
        s3.put_object(Bucket=bucket, Key=PREFIX + key, Body=bodies[key])

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(put, bodies))
    others = [f"{PREFIX}sub/nested.txt", "elsewhere/obj_00000.txt"]  # not in the prefix "dir"
    for key in others:
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")

    pages: list[int] = []
    s3store.client.meta.events.register(
        "after-call.s3.ListObjectsV2", lambda **kw: pages.append(kw["parsed"].get("KeyCount"))
    )
    listed = {obj.key: obj.size for obj in s3store.objects()}

    assert listed == {key: len(body) for key, body in bodies.items()}
    assert len(pages) >= 2, f"listing took one page ({pages}); pagination untested"

    s3store.delete(sorted(listed))  # DeleteObjects takes at most 1000 keys per call

    assert sorted(moto_s3.all_keys(s3, bucket)) == sorted(others)


# --- 5. per-key delete errors ---------------------------------------------------------------


def test_delete_raises_naming_each_key_s3_refused(s3: Any, bucket: str, s3store: S3Store) -> None:
    # moto returns real per-key `Errors` from DeleteObjects when a bucket policy denies
    # s3:DeleteObject on a key, as S3 does, so no Stubber is needed.
    s3store.put_bytes("locked.sql.gz", b"keep me")
    s3store.put_bytes("free.sql.gz", b"delete me")
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:DeleteObject",
                "Resource": f"arn:aws:s3:::{bucket}/{PREFIX}locked*",
            }
        ],
    }
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))

    with pytest.raises(StoreError) as caught:
        s3store.delete(["free.sql.gz", "locked.sql.gz"])

    message = str(caught.value)
    assert "locked.sql.gz (AccessDenied: Access Denied)" in message
    assert "free.sql.gz" not in message
    assert moto_s3.all_keys(s3, bucket) == [f"{PREFIX}locked.sql.gz"]


def test_an_unrecorded_upload_is_named_then_removed_after_its_grace(
    s3: Any, bucket: str, s3store: S3Store
) -> None:
    """A run killed between completing the upload and writing the manifest."""
    key = "backup_20261120_030000.sql.gz"
    with s3store.writing(key) as writer:
        writer.write(b"\x1f\x8b dump")
    assert sweep_unrecorded(s3store).waiting == [key]
    assert sweep_unrecorded(s3store, grace=timedelta(0)).removed == [key]
    assert moto_s3.all_keys(s3, bucket) == []


# --- 6. check_writable ----------------------------------------------------------------------


def test_check_writable_passes_and_leaves_no_probe(s3: Any, bucket: str, s3store: S3Store) -> None:
    s3store.check_writable()
    assert moto_s3.all_keys(s3, bucket) == []


def test_check_writable_fails_on_missing_bucket(s3: Any) -> None:
    name = f"sage-ops-missing-{secrets.token_hex(6)}"
    with pytest.raises(StoreError, match=rf"bucket '{name}' does not exist"):
        S3Store(f"s3://{name}/{PREFIX}").check_writable()
    assert not moto_s3.bucket_exists(s3, name)


# --- 7. retention ---------------------------------------------------------------------------


def test_retention_deletes_only_the_oldest_verified_backups_it_made(
    s3: Any, bucket: str, s3store: S3Store, source_db: PgTarget
) -> None:
    # Not ours: an unrelated file and a seed-era dump without a manifest (older than all).
    s3store.put_bytes("notes.txt", b"runbook notes")
    s3store.put_bytes("backup_20200101_000000.sql.gz", gzip.compress(b"-- seed dump\n"))

    made: list[Manifest] = []
    for i in range(4):
        if i:  # keys have one-second resolution: start the next backup in the next second
            time.sleep(1.02 - time.time() % 1)
        manifest = backup_database(source_db, s3store)
        assert verify_backup(s3store, manifest, "checksum", None).passed
        made.append(manifest)
    oldest, newest = [m.key for m in made[:2]], [m.key for m in made[2:]]
    for key in (*oldest, *newest):
        assert _manifest(s3, bucket, key)["verification"]["status"] == "passed"

    result = apply_retention(s3store, keep=2, database=source_db.redacted)

    assert sorted(result.deleted) == sorted(oldest)
    assert result.kept == newest[::-1]  # newest first
    assert result.corrupt == []
    expected = {"notes.txt", "backup_20200101_000000.sql.gz"}
    expected |= {k for key in newest for k in (key, manifest_key(key))}
    assert {k[len(PREFIX) :] for k in moto_s3.all_keys(s3, bucket)} == expected


# --- 8. no secrets in the bucket ------------------------------------------------------------


def test_database_password_never_reaches_the_bucket(
    s3: Any, bucket: str, s3store: S3Store, source_db: PgTarget
) -> None:
    # The machine's server (and the embedded one) trust every login, so any password connects;
    # it still travels through libpq's passfile, pg_dump, the manifest and the store.
    password = f"Pw-{secrets.token_hex(8)}:/@"
    target = replace(source_db, password=password)

    manifest = backup_database(target, s3store)
    verify_backup(s3store, manifest, "checksum", None)

    assert manifest.database == target.redacted
    assert ":***@" in manifest.database
    needles = {password.encode(), quote(password, safe="").encode(), password[3:-3].encode()}
    keys = moto_s3.all_keys(s3, bucket)
    assert sorted(keys) == sorted([PREFIX + manifest.key, PREFIX + manifest_key(manifest.key)])
    for key in keys:
        obj = s3.get_object(Bucket=bucket, Key=key)
        data = obj["Body"].read()
        if key.endswith(".gz"):
            data = gzip.decompress(data)
        metadata = json.dumps(obj.get("Metadata", {})).encode()
        for needle in needles:
            assert needle not in data, f"password found in {key}"
            assert needle not in metadata, f"password found in metadata of {key}"


# --- 9. encryption: the bucket's default KMS key, or the configured one ---------------------


def _kms_key(moto: moto_s3.MotoS3) -> str:
    kms = boto3.session.Session().client(
        "kms",
        endpoint_url=moto.endpoint,
        region_name=moto_s3.REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    return str(kms.create_key(Description="sage-ops test")["KeyMetadata"]["Arn"])


def _bucket_default(s3: Any, bucket: str, rule: dict[str, str]) -> None:
    s3.put_bucket_encryption(
        Bucket=bucket,
        ServerSideEncryptionConfiguration={"Rules": [{"ApplyServerSideEncryptionByDefault": rule}]},
    )


def _encryption(s3: Any, bucket: str, key: str) -> tuple[str, str | None]:
    head = s3.head_object(Bucket=bucket, Key=key)
    return head["ServerSideEncryption"], head.get("SSEKMSKeyId")


def test_bucket_default_kms_key_is_used_not_overridden(
    s3: Any, bucket: str, s3store: S3Store, moto: moto_s3.MotoS3, small_parts: int
) -> None:
    key_arn = _kms_key(moto)
    _bucket_default(s3, bucket, {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key_arn})
    s3store.put_bytes("single.json", b"{}")
    with s3store.writing("multi.sql.gz") as writer:  # the multipart path backups take
        writer.write(os.urandom(MIN_PART + 1))

    for name in ("single.json", "multi.sql.gz"):
        assert _encryption(s3, bucket, PREFIX + name) == ("aws:kms", key_arn)


def test_configured_kms_key_is_sent_on_every_write(
    s3: Any,
    bucket: str,
    moto: moto_s3.MotoS3,
    monkeypatch: pytest.MonkeyPatch,
    small_parts: int,
) -> None:
    key_arn = _kms_key(moto)
    monkeypatch.setenv("SAGE_OPS_BACKUP_URL", f"s3://{bucket}/{PREFIX}")
    monkeypatch.setenv(KMS_KEY, key_arn)
    store = BackupConfig.from_env().store()  # the resource reads the key and passes it in
    store.put_bytes("single.json", b"{}")
    with store.writing("multi.sql.gz") as writer:
        writer.write(os.urandom(MIN_PART + 1))

    for name in ("single.json", "multi.sql.gz"):
        assert _encryption(s3, bucket, PREFIX + name) == ("aws:kms", key_arn)


@pytest.mark.parametrize(
    ("sse", "key", "expected"),
    [
        (None, None, {}),
        ("AES256", None, {"ServerSideEncryption": "AES256"}),
        ("aws:kms", None, {"ServerSideEncryption": "aws:kms"}),
        (None, "alias/k", {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": "alias/k"}),
    ],
)
def test_encryption_headers(
    monkeypatch: pytest.MonkeyPatch, sse: str | None, key: str | None, expected: dict
) -> None:
    for name, value in ((SSE, sse), (KMS_KEY, key)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    config = BackupConfig.from_env()
    assert s3_store.encryption_args(config.s3_sse, config.s3_kms_key_id) == expected


@pytest.mark.parametrize(
    ("sse", "key", "refusal"),
    [
        ("AES256", "alias/k", "SAGE_OPS_S3_KMS_KEY_ID is set, so SAGE_OPS_S3_SSE must be aws:kms"),
        ("aws:kms:dsse", None, "SAGE_OPS_S3_SSE='aws:kms:dsse' is not allowed"),
    ],
)
def test_encryption_settings_the_store_cannot_honour_are_refused(
    monkeypatch: pytest.MonkeyPatch, sse: str, key: str | None, refusal: str
) -> None:
    monkeypatch.setenv(SSE, sse)
    if key:
        monkeypatch.setenv(KMS_KEY, key)
    with pytest.raises(ConfigError, match=re.escape(refusal)):
        BackupConfig.from_env()
