"""Collecting money: charge attempts recorded before the gateway call and resolved after it."""
