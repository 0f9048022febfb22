# Image for the web server and the worker (docker-compose.yml).
FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends libgl1 libglib2.0-0 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY requirements/ requirements/
RUN pip install --no-cache-dir -r requirements/base.txt
COPY . .
RUN pip install --no-cache-dir --no-deps -e .
ENV ENVIRONMENT=production
CMD ["forge", "web"]
