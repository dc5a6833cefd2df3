"""Helpers shared by the tests: plain modules, imported relatively (`from ..helpers.chain import
ChainWorld`). conftest.py files hold only fixtures and hooks; what a test module imports by name
lives here."""
