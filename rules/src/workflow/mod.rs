//! The four standard QuickBooks reminder workflows (DOMAIN.md §3), built in and native: payment
//! due reminder, vendor (bill) payment reminder, bank deposit reminder, unsent invoice reminder.
//! Each is off until enabled and every knob is configurable. This module decides when each stage
//! of each record falls due; the engine stores and delivers.
//!
//! Work in progress (issue 4):
//! - [`config`]: the settings, QuickBooks' defaults and their validation;
//! - [`plan`]: stage dates, repeats, send window and idempotency keys per record, and whether a
//!   record qualifies (stop conditions, minimum, include/exclude, pauses);
//! - [`template`]: merge fields, the built-in English and French texts, and the actions of a firing;
//! - [`time`]: local time across daylight saving, and send windows.

pub mod config;
pub mod plan;
pub mod template;
pub mod time;
