# The admin API process kind (Flask + flask-smorest); its code lands with the API issue.
FROM python:3.11-slim
WORKDIR /app
COPY requirements/base.txt requirements/api.txt requirements/
RUN pip install --no-cache-dir -r requirements/api.txt
COPY pyproject.toml ./
COPY shared shared
COPY admin_api admin_api
RUN pip install --no-cache-dir --no-deps -e .
ENV TOONPICK_PROFILE=prod
EXPOSE 8082
