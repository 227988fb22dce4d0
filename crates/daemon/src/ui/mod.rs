//! The Ticketing tab in the browser, served on the admin listener.
//!
//! Being written (issue 9): until then the admin listener serves only the JSON admin API.

use axum::Router;

use crate::admin::AdminState;

/// The UI's routes, merged into the admin listener's router.
pub fn router(_state: AdminState) -> Router {
    Router::new()
}
