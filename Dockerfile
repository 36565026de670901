FROM python:3.11-slim-bookworm

# FORWARDED_ALLOW_IPS empty: gunicorn/uvicorn leave the peer address alone (they would believe
# X-Forwarded-For from 127.0.0.1); the throttles read it from TRUSTED_PROXIES only (README, Configuration).
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    VAR_DIR=/app/var STATIC_ROOT=/app/var/static FORWARDED_ALLOW_IPS=""
WORKDIR /app

COPY pyproject.toml README.md ./
COPY controlplane controlplane
COPY core core
COPY rbac rbac
COPY agents agents
COPY run_queue run_queue
COPY runs runs
COPY files files
COPY gateway gateway
COPY observability observability
COPY portal portal
COPY executor executor
COPY templates templates
COPY static static
COPY locale locale
COPY manage.py ./

RUN pip install . \
 && useradd --system --uid 10001 --home /app controlplane \
 && mkdir -p /app/var/media && chown -R controlplane /app/var \
 && DEBUG=1 python manage.py collectstatic --noinput -v0
USER controlplane
EXPOSE 8000
CMD ["gunicorn", "controlplane.asgi:application", "-k", "uvicorn_worker.UvicornWorker", "--bind", "0.0.0.0:8000"]
