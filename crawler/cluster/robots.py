"""robots.txt for every request, including those that queue up while it is fetched.

Scrapy 2.19's RobotsTxtMiddleware parks the requests that arrive while a
host's robots.txt is downloading on one shared Deferred. Under the asyncio
reactor each waiter awaits it through ``Deferred.asFuture``, whose callback
returns None into the chain: the first waiter gets the parser, every later one
gets None, which the middleware reads as "no robots.txt, allow". Seen here as
forbidden pages fetched at the start of a crawl. Once the Deferred has fired,
the middleware's own table holds the real parser (or None after a failed
download), so every waiter reads it from there.
"""

from __future__ import annotations

from scrapy.downloadermiddlewares.robotstxt import RobotsTxtMiddleware
from scrapy.http import Request
from scrapy.robotstxt import RobotParser
from scrapy.utils.httpobj import urlparse_cached
from twisted.internet.defer import Deferred


class SharedRobotsTxtMiddleware(RobotsTxtMiddleware):
    async def robot_parser(self, request: Request) -> RobotParser | None:
        parser = await super().robot_parser(request)
        settled = self._parsers.get(urlparse_cached(request).netloc, parser)
        return parser if isinstance(settled, Deferred) else settled
