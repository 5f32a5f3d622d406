"""Object storage as the place an export goes to and an import comes from.

`location` is the ``s3://bucket/prefix`` model the resources embed (pydantic only, so the
operator loads no boto3); `client` builds the one boto3 client per configuration that this
package and `ferry.tracking.s3` share; `layout` is what a finished export looks like in a
bucket (markers, the manifest); `spool` moves finished objects between a bounded local
directory and the bucket; `transfer` runs an engine export or import against a location.
Nothing here imports kubernetes or mlflow.
"""
