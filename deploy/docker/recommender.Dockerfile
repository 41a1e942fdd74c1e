# The recommender's RQ worker: trains, updates and serves recommendations from the
# "recommender" queue (`docker compose up --scale recommender=N` for more workers).
FROM python:3.11-slim
WORKDIR /app
COPY requirements/base.txt requirements/recommender.txt requirements/
RUN pip install --no-cache-dir -r requirements/recommender.txt
COPY pyproject.toml ./
COPY shared shared
COPY recommender recommender
RUN pip install --no-cache-dir --no-deps -e .
ENV TOONPICK_PROFILE=prod TOONPICK_TASK_MODULES=recommender.tasks
CMD ["toonpick", "worker", "--queue", "recommender"]
