"""Faust worker fleet: converts uploads, accepts upload commands, runs fleet-wide schedules."""
