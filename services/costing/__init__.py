"""Costing service: consumes events and applies FIFO lot allocations in PostgreSQL."""
