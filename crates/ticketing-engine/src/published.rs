//! One writer, many readers: a value that exactly one owner publishes and anyone may read.
//!
//! [`cell`] makes a [`Publisher`] (not `Clone`: whoever holds it is the value's only writer)
//! and a [`View`] (cheap to clone, read-only). The state the engine shares with an admin
//! surface is made of these (see [`crate::engine::Shared`]), so "who changes the catalog?" has
//! one answer in the types, not a convention: the engine's reads hold the catalog's publisher,
//! the lease holds the role's, the reloader the presentation's.
//!
//! Built on `tokio::sync::watch` (a reader can also wait for a change with [`View::changed`]).

use tokio::sync::watch;

/// The only writer of a published value.
#[derive(Debug)]
pub struct Publisher<T>(watch::Sender<T>);

/// A read-only handle on a published value.
#[derive(Debug, Clone)]
pub struct View<T>(watch::Receiver<T>);

/// A new published value: its one publisher and a view of it.
pub fn cell<T>(initial: T) -> (Publisher<T>, View<T>) {
    let (tx, rx) = watch::channel(initial);
    (Publisher(tx), View(rx))
}

impl<T> Publisher<T> {
    /// Replaces the value; every view sees it from now on.
    pub fn publish(&self, value: T) {
        self.0.send_replace(value);
    }

    /// Changes the value in place (only when `change` says it changed, views are told).
    pub fn modify(&self, change: impl FnOnce(&mut T) -> bool) {
        self.0.send_if_modified(change);
    }

    /// Another view of the value.
    pub fn view(&self) -> View<T> {
        View(self.0.subscribe())
    }
}

impl<T: Clone> View<T> {
    /// A copy of the current value.
    pub fn get(&self) -> T {
        self.0.borrow().clone()
    }
}

impl<T> View<T> {
    /// Reads the current value without copying it (keep `read` short: the publisher waits
    /// for it).
    pub fn with<R>(&self, read: impl FnOnce(&T) -> R) -> R {
        read(&self.0.borrow())
    }

    /// Waits until the value changes after this view last looked (`Err` once the publisher
    /// is gone).
    pub async fn changed(&mut self) -> Result<(), watch::error::RecvError> {
        self.0.changed().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn views_see_what_the_publisher_published() {
        let (tx, view) = cell(1);
        let other = tx.view();
        tx.publish(2);
        assert_eq!((view.get(), other.get()), (2, 2));
        tx.modify(|v| {
            *v += 1;
            true
        });
        assert_eq!(view.with(|v| *v), 3);
        drop(tx);
        assert_eq!(view.get(), 3, "the last value stays readable");
    }
}
