"""Every router the API serves; each module owns one TMF API (or one /bss-api area)."""

from fastapi import APIRouter

ROUTERS: list[APIRouter] = []
