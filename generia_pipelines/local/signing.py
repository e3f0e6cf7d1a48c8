"""HMAC-SHA256 presigned PUT URLs, the local counterpart of S3 query-string signatures.

The signature covers the media id, its object key, the expiry, the declared size and the
content type, so none of them can be changed by the uploader without the object store
noticing.
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import urlencode


class UrlSigner:
    def __init__(self, secret: str) -> None:
        self._secret = secret.encode()

    def signature(
        self, *, media_id: str, object_key: str, expires: int, size: int, content_type: str
    ) -> str:
        message = "\n".join(("PUT", media_id, object_key, str(expires), str(size), content_type))
        return hmac.new(self._secret, message.encode(), hashlib.sha256).hexdigest()

    def verify(
        self,
        signature: str,
        *,
        media_id: str,
        object_key: str,
        expires: int,
        size: int,
        content_type: str,
    ) -> bool:
        expected = self.signature(
            media_id=media_id,
            object_key=object_key,
            expires=expires,
            size=size,
            content_type=content_type,
        )
        return hmac.compare_digest(expected, signature)

    def put_url(
        self,
        base_url: str,
        *,
        media_id: str,
        object_key: str,
        expires: int,
        size: int,
        content_type: str,
    ) -> str:
        """``{base}/upload/{media_id}?expires=..&size=..&ct=..&sig=..``."""
        sig = self.signature(
            media_id=media_id,
            object_key=object_key,
            expires=expires,
            size=size,
            content_type=content_type,
        )
        query = urlencode({"expires": expires, "size": size, "ct": content_type, "sig": sig})
        return f"{base_url}/upload/{media_id}?{query}"
