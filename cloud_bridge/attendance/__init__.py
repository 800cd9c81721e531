"""E-EDC working-time records in the bridge: timesheets, corrections, absences, chain
audit and monthly reports (docs/attendance.md)."""
