# The recommender / job worker process kind (RQ workers); its code lands with its issues.
FROM python:3.11-slim
WORKDIR /app
COPY requirements/base.txt requirements/recommender.txt requirements/
RUN pip install --no-cache-dir -r requirements/recommender.txt
COPY pyproject.toml ./
COPY shared shared
COPY recommender recommender
RUN pip install --no-cache-dir --no-deps -e .
ENV TOONPICK_PROFILE=prod
