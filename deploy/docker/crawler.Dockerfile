# A spider node: `docker run ... toonpick-crawler scrapy crawl naver`.
# Start as many as you like against one REDIS_URL: they share each run.
# The same image runs the crawl tasks' worker and the scheduler, which imports every
# task module (to know each schedule's task type and queue), the recommender's too:
# hence its requirements and code here, though spider nodes never use them.
FROM python:3.11-slim
WORKDIR /app
COPY requirements/base.txt requirements/crawler.txt requirements/recommender.txt requirements/
RUN pip install --no-cache-dir -r requirements/crawler.txt -r requirements/recommender.txt
COPY pyproject.toml scrapy.cfg ./
COPY shared shared
COPY crawler crawler
COPY recommender recommender
RUN pip install --no-cache-dir --no-deps -e .
ENV TOONPICK_PROFILE=prod
CMD ["scrapy", "crawl", "naver"]
