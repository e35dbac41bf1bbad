//! What the host offers a plugin: its log and its metrics. Natively (in unit tests) messages go
//! to stderr and metrics to a thread-local record that [`recorded_counters`] returns.

#[cfg(not(target_arch = "wasm32"))]
use std::cell::RefCell;

pub use crate::bindings::sluice::plugin::host::Level;

#[cfg(not(target_arch = "wasm32"))]
thread_local! {
    static COUNTERS: RefCell<Vec<(String, u64)>> = const { RefCell::new(Vec::new()) };
}

/// Writes a message to the gateway's log, tagged with the plugin's name.
pub fn log(level: Level, message: &str) {
    #[cfg(target_arch = "wasm32")]
    crate::bindings::sluice::plugin::host::log(level, message);
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("[plugin {level:?}] {message}");
}

/// Adds `delta` to the plugin counter `name`.
pub fn counter_add(name: &str, delta: u64) {
    #[cfg(target_arch = "wasm32")]
    crate::bindings::sluice::plugin::host::counter_add(name, delta);
    #[cfg(not(target_arch = "wasm32"))]
    COUNTERS.with(|counters| {
        let mut counters = counters.borrow_mut();
        match counters.iter_mut().find(|(counter, _)| counter == name) {
            Some((_, total)) => *total += delta,
            None => counters.push((name.to_owned(), delta)),
        }
    });
}

/// Sets the plugin gauge `name`.
pub fn gauge_set(name: &str, value: f64) {
    #[cfg(target_arch = "wasm32")]
    crate::bindings::sluice::plugin::host::gauge_set(name, value);
    #[cfg(not(target_arch = "wasm32"))]
    let _ = (name, value);
}

/// Natively only: the counters this thread added so far, for unit tests.
#[cfg(not(target_arch = "wasm32"))]
pub fn recorded_counters() -> Vec<(String, u64)> {
    COUNTERS.with(|counters| counters.borrow().clone())
}
