//! The four standard QuickBooks reminder workflows (DOMAIN.md §3), built in and native: payment
//! due reminder, vendor (bill) payment reminder, bank deposit reminder, unsent invoice reminder.
//! Each is off until enabled and every knob is configurable. This module decides when each stage
//! of each record falls due; the engine stores and delivers.
//!
//! Work in progress (issue 4): [`config`] — the settings and QuickBooks' defaults; [`plan`] — stage
//! dates, keys and qualification per record; [`time`] —
//! local time across daylight saving, and send windows.

pub mod config;
pub mod plan;
pub mod time;
