//! syslog
