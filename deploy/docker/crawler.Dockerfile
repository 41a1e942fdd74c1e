# A spider node: `docker run ... toonpick-crawler scrapy crawl naver`.
# Start as many as you like against one REDIS_URL: they share each run.
FROM python:3.11-slim
WORKDIR /app
COPY requirements/base.txt requirements/crawler.txt requirements/
RUN pip install --no-cache-dir -r requirements/crawler.txt
COPY pyproject.toml scrapy.cfg ./
COPY shared shared
COPY crawler crawler
RUN pip install --no-cache-dir --no-deps -e .
ENV TOONPICK_PROFILE=prod
CMD ["scrapy", "crawl", "naver"]
