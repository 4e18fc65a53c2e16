"""``fer-age check-remote [NAME]``: try the credentials of the project's DVC S3 remotes before a push or pull,
and say which remote refused them and which variable to set."""

from __future__ import annotations

import argparse
import os

from fer_age.config import Config
from fer_age.errors import FerAgeError

REFUSED_KEY = {
    "InvalidAccessKeyId": "AWS_ACCESS_KEY_ID",
    "SignatureDoesNotMatch": "AWS_SECRET_ACCESS_KEY",
    "InvalidToken": "AWS_SESSION_TOKEN",
    "ExpiredToken": "AWS_SESSION_TOKEN",
}


class RemoteError(FerAgeError, PermissionError):
    """A DVC remote cannot be reached or refuses the credentials."""


def credential_source(settings: dict) -> str:
    """Where the remote's credentials come from, in the words of DVC's settings."""
    if settings.get("access_key_id"):
        return "the remote's access_key_id/secret_access_key (.dvc/config.local)"
    if settings.get("profile") or os.environ.get("AWS_PROFILE"):
        return f"AWS profile '{settings.get('profile') or os.environ['AWS_PROFILE']}'"
    return "the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)"


def check_s3_remote(name: str, settings: dict) -> str:
    """List one key of the remote's bucket and prefix with the credentials DVC would use; a clear error if refused."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    bucket, _, prefix = settings["url"].removeprefix("s3://").partition("/")
    endpoint = settings.get("endpointurl")
    where = f"DVC remote '{name}' ({settings['url']}{f', endpoint {endpoint}' if endpoint else ''})"
    session = boto3.session.Session(
        profile_name=settings.get("profile"),
        region_name=settings.get("region"),
        aws_access_key_id=settings.get("access_key_id"),
        aws_secret_access_key=settings.get("secret_access_key"),
    )
    try:
        session.client("s3", endpoint_url=endpoint).list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1)
    except NoCredentialsError:
        raise RemoteError(
            f"{where} has no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
            f"(or AWS_PROFILE, or 'dvc remote modify --local {name} access_key_id ...')"
        ) from None
    except ClientError as err:
        code = err.response.get("Error", {}).get("Code", "")
        if code in REFUSED_KEY:
            raise RemoteError(
                f"{where} refused the credentials from {credential_source(settings)} ({code}): set "
                f"{REFUSED_KEY[code]} to this remote's key"
            ) from None
        if code in ("AccessDenied", "403"):
            raise RemoteError(
                f"{where} denies these credentials access to bucket '{bucket}' ({code}): use keys "
                "allowed to list, read and write it (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)"
            ) from None
        if code == "NoSuchBucket":
            raise RemoteError(f"{where}: bucket '{bucket}' does not exist") from None
        raise RemoteError(f"{where} answered {code or err}") from None
    except BotoCoreError as err:
        raise RemoteError(f"{where} cannot be reached ({err}); check the remote's endpointurl") from None
    return f"{where}: credentials from {credential_source(settings)} accepted"


def main(config: Config, args: argparse.Namespace) -> None:
    from dvc.repo import Repo

    remotes = Repo(".").config["remote"]
    names = [args.remote] if args.remote else sorted(remotes)
    if not names:
        raise RemoteError("this project has no DVC remote; add one with 'dvc remote add -d <name> s3://...'")
    for name in names:
        if name not in remotes:
            raise RemoteError(f"no DVC remote named '{name}' (remotes: {', '.join(sorted(remotes)) or 'none'})")
        settings = remotes[name]
        if settings["url"].startswith("s3://"):
            print(check_s3_remote(name, settings))
        else:
            print(f"DVC remote '{name}' ({settings['url']}): not an S3 remote, not checked")
