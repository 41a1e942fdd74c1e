"""Scrapy settings for the crawl cluster, filled from ``shared.config``.

Every TOONPICK_* value is copied here once under the same name, so components
read ``crawler.settings`` (``from_crawler``) and never ``os.environ``. With
``REDIS_URL`` set, the cluster components (leased scrapy-redis scheduler,
per-run dupefilter and stats, shared per-host throttle) replace Scrapy's
single-process ones; without it, a crawl is a plain single-process crawl.
"""

from crawler.cluster.settings import cluster_settings
from shared.config import load_config

_config = load_config()

BOT_NAME = "toonpick"
SPIDER_MODULES = ["crawler.spiders"]
NEWSPIDER_MODULE = "crawler.spiders"
# Our `crawl` command exits non-zero unless the spider closed "finished" or "stopped".
COMMANDS_MODULE = "crawler.commands"

# The stores and platforms, one URL each (see shared/config.py for meanings).
TOONPICK_PROFILE = _config.profile
TOONPICK_TIMEZONE = _config.timezone
TOONPICK_MARIADB_URL = _config.mariadb_url
TOONPICK_MONGO_URL = _config.mongo_url
TOONPICK_NAVER_BASE_URL = _config.naver_base_url
TOONPICK_KAKAO_BASE_URL = _config.kakao_base_url
TOONPICK_KAKAOPAGE_BASE_URL = _config.kakaopage_base_url
TOONPICK_CRAWL_BATCH_SIZE = _config.crawl_batch_size
TOONPICK_CRAWL_FLUSH_SECONDS = _config.crawl_flush_seconds
TOONPICK_CRAWL_HOST_RATE = _config.crawl_host_rate
TOONPICK_CRAWL_LEASE_SECONDS = _config.crawl_lease_seconds
TOONPICK_CRAWL_IDLE_SECONDS = _config.crawl_idle_seconds
TOONPICK_CRAWL_OUTAGE_SECONDS = _config.crawl_outage_seconds
TOONPICK_CRAWL_MAX_RECLAIMS = _config.crawl_max_reclaims
TOONPICK_CRAWL_RETRY_AFTER_MAX = _config.crawl_retry_after_max
TOONPICK_CRAWL_TODAY = _config.crawl_today
REDIS_URL = _config.redis_url

# Politeness: the platforms are real services run by other people.
ROBOTSTXT_OBEY = True
USER_AGENT = "Mozilla/5.0 (compatible; toonpick-worker/0.1; +https://toonpick.example/bot)"
CONCURRENT_REQUESTS = _config.crawl_concurrency
CONCURRENT_REQUESTS_PER_DOMAIN = _config.crawl_concurrency
DOWNLOAD_TIMEOUT = 30
RETRY_TIMES = 3
RETRY_HTTP_CODES = [500, 502, 503, 504, 522, 524, 408, 429]
COOKIES_ENABLED = False
# A platform page yields at most a few dozen items; Scrapy's default of 100 item
# workers per response only adds tasks (measured: ~10% less crawler CPU with pipelines on).
CONCURRENT_ITEMS = 25
TELNETCONSOLE_ENABLED = False
LOG_LEVEL = _config.log_level

# Pipelines in data-flow order: validate, raw document, thumbnail, catalogue row.
# Images run before the catalogue so the row can point at the stored object.
ITEM_PIPELINES = {
    "crawler.pipelines.validate.ValidationPipeline": 100,
    "crawler.pipelines.raw_store.MongoRawPipeline": 200,
    "crawler.pipelines.images.ThumbnailImagesPipeline": 300,
    "crawler.pipelines.catalogue.CataloguePipeline": 400,
}
IMAGES_STORE = _config.images_store
IMAGES_URLS_FIELD = "image_urls"
IMAGES_RESULT_FIELD = "images"
# Scrapy's S3 store reads these (moto_server in dev/test).
AWS_ENDPOINT_URL = _config.aws_endpoint_url or None
AWS_ACCESS_KEY_ID = _config.aws_access_key_id or None
AWS_SECRET_ACCESS_KEY = _config.aws_secret_access_key or None
AWS_REGION_NAME = _config.aws_region
AWS_USE_SSL = not (_config.aws_endpoint_url or "").startswith("http://")
AWS_VERIFY = AWS_USE_SSL

TWISTED_REACTOR = "twisted.internet.asyncioreactor.AsyncioSelectorReactor"
FEED_EXPORT_ENCODING = "utf-8"

# Scheduler, dupefilter, stats, throttle and Retry-After handling: cluster-wide
# when REDIS_URL is set, process-local otherwise.
globals().update(cluster_settings(REDIS_URL))

TOONPICK_STATS_FILE = ""
EXTENSIONS = {
    **globals().get("EXTENSIONS", {}),
    "crawler.stats_export.StatsFileExport": 900,
}
# Peak memory lands in the stats (memusage/max); checked often enough for benchmarks.
MEMUSAGE_CHECK_INTERVAL_SECONDS = 1.0
