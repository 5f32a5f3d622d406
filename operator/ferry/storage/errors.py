"""boto3 and botocore failures as one-line `ferry.errors` exceptions that name the object and what to check.

Never a botocore traceback, never a credential: the message names the bucket, the key, the
endpoint and the variable or flag to look at.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from boto3.exceptions import RetriesExceededError, S3UploadFailedError
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    PartialCredentialsError,
    SSLError,
)
from botocore.exceptions import (
    ConnectionError as BotoConnectionError,
)

from ferry.errors import FerryError, NotFoundError, ServerError

NOT_FOUND = {"NoSuchKey", "404", "NotFound"}
DENIED = {"AccessDenied", "403", "Forbidden", "InvalidAccessKeyId", "SignatureDoesNotMatch",
          "InvalidToken", "ExpiredToken", "AllAccessDisabled"}


@dataclass(frozen=True)
class Hints:
    """What a message tells the user to set, in the words of the caller's configuration."""

    endpoint: str = "check the endpoint URL (--s3-endpoint-url, FERRY_S3_ENDPOINT_URL)"
    tls: str = "set AWS_CA_BUNDLE to the endpoint's CA, or skip verification (insecureSkipTlsVerify)"


@contextmanager
def translated(action: str, bucket: str, key: str, endpoint: str, hints: Hints = Hints()) -> Iterator[None]:
    """Run the block; a boto3 failure in it leaves as one `FerryError` line."""
    try:
        yield
    except FerryError:
        raise
    except (ClientError, BotoCoreError, S3UploadFailedError, RetriesExceededError) as err:
        raise translate(err, action, bucket, key, endpoint, hints) from None


def translate(err: BaseException, action: str, bucket: str, key: str, endpoint: str,
              hints: Hints = Hints()) -> FerryError:
    """One line for a boto3/botocore failure, naming the object and what to check."""
    if isinstance(err, S3UploadFailedError | RetriesExceededError):  # wrappers of the real cause
        inner = getattr(err, "last_exception", None) or err.__cause__ or err.__context__
        if isinstance(inner, ClientError | BotoCoreError):
            err = inner
    where = f"s3://{bucket}/{key}"
    if isinstance(err, ClientError):
        error = err.response.get("Error", {})
        code = str(error.get("Code") or err.response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))
        detail = " ".join(str(error.get("Message") or code).split())
        if code == "NoSuchBucket":
            return NotFoundError(f"S3 bucket '{bucket}' does not exist at {endpoint} ({action} {where})")
        if code in NOT_FOUND:
            return NotFoundError(f"S3 object {where} not found at {endpoint}")
        if code in DENIED:
            return ServerError(f"S3 access denied to {where} at {endpoint} ({code}: {detail}); "
                               "check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY and the bucket's policy")
        return ServerError(f"S3 {action} of {where} at {endpoint} failed: {code}: {detail}")
    detail = " ".join(str(err).split())
    if isinstance(err, SSLError):
        return ServerError(f"TLS failure talking to S3 at {endpoint} ({action} {where}): {detail}; {hints.tls}")
    if isinstance(err, NoCredentialsError | PartialCredentialsError):
        return ServerError(f"no usable AWS credentials for {where}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
    if isinstance(err, BotoConnectionError):
        return ServerError(f"cannot reach S3 at {endpoint} ({action} {where}): {detail}; {hints.endpoint}")
    return ServerError(f"S3 {action} of {where} at {endpoint} failed: {detail}")
