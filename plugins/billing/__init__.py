"""Warehouse-native usage billing: raw events in PostgreSQL, invoices computed in dbt, run by Airflow."""
