//! Dependency injection: the [`Container`] that creates each [`Injectable`] service once and
//! hands every consumer a clone of that one instance.
//!
//! Services are `Clone` handles (the guide's `ChatService` holds an `Arc<WebSocketManager>`),
//! so "the same instance" means clones of the value the container created: a room joined
//! through one controller's `ChatService` is the room another controller's `ChatService`
//! broadcasts to.
//!
//! ```
//! use std::sync::Arc;
//! use armature_realtime::di::{Container, Injectable};
//!
//! #[derive(Clone, Default)]
//! struct Counter(Arc<std::sync::atomic::AtomicU32>);
//!
//! impl Injectable for Counter {
//!     fn create(_: &Container) -> Result<Self, armature_realtime::Error> {
//!         Ok(Self::default())
//!     }
//! }
//!
//! let mut container = Container::new();
//! container.register::<Counter>();
//! let a: Counter = container.resolve().unwrap();
//! let b: Counter = container.resolve().unwrap();
//! assert!(Arc::ptr_eq(&a.0, &b.0));
//! ```

use std::any::{Any, TypeId, type_name};
use std::collections::HashMap;

use parking_lot::Mutex;

use crate::Error;

/// A service the [`Container`] can create and share. `#[injectable]` implements it.
pub trait Injectable: Clone + Send + Sync + 'static {
    /// Creates the one instance; dependencies come from `container`.
    ///
    /// # Errors
    /// Whatever creating the service or resolving its dependencies fails with.
    fn create(container: &Container) -> Result<Self, Error>;
}

/// Holds the providers a module registered and the instances created from them.
#[derive(Default)]
pub struct Container {
    registered: HashMap<TypeId, &'static str>,
    instances: Mutex<HashMap<TypeId, Box<dyn Any + Send + Sync>>>,
    resolving: Mutex<Vec<(TypeId, &'static str)>>,
}

impl std::fmt::Debug for Container {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<_> = self.registered.values().collect();
        names.sort();
        f.debug_struct("Container")
            .field("providers", &names)
            .finish_non_exhaustive()
    }
}

impl Container {
    /// An empty container.
    pub fn new() -> Self {
        Self::default()
    }

    /// Declares `T` a provider; it is created on first [`resolve`](Self::resolve).
    /// Registering twice is harmless.
    pub fn register<T: Injectable>(&mut self) {
        self.registered.insert(TypeId::of::<T>(), type_name::<T>());
    }

    /// Declares `T` a provider with a ready-made instance (for tests, or values built from
    /// configuration).
    pub fn provide<T: Injectable>(&mut self, value: T) {
        self.register::<T>();
        self.instances
            .lock()
            .insert(TypeId::of::<T>(), Box::new(value));
    }

    /// True when `T` is a registered provider.
    pub fn is_registered<T: Injectable>(&self) -> bool {
        self.registered.contains_key(&TypeId::of::<T>())
    }

    /// The number of registered providers.
    pub fn len(&self) -> usize {
        self.registered.len()
    }

    /// True when no provider is registered.
    pub fn is_empty(&self) -> bool {
        self.registered.is_empty()
    }

    /// A clone of the one instance of `T`, creating it on first use.
    ///
    /// # Errors
    /// [`Error::Internal`] when `T` is not a registered provider or depends on itself
    /// (directly or through others), or whatever `T::create` fails with.
    pub fn resolve<T: Injectable>(&self) -> Result<T, Error> {
        self.resolve_inner::<T>(false)
    }

    /// [`resolve`](Self::resolve), creating (and keeping) an instance of an unregistered
    /// `T` too: how guards named in `#[use_guards]` are found.
    ///
    /// # Errors
    /// A cycle, or whatever `T::create` fails with.
    pub fn resolve_or_create<T: Injectable>(&self) -> Result<T, Error> {
        self.resolve_inner::<T>(true)
    }

    fn resolve_inner<T: Injectable>(&self, create_unregistered: bool) -> Result<T, Error> {
        let id = TypeId::of::<T>();
        if let Some(existing) = self.cached::<T>() {
            return Ok(existing);
        }
        if !create_unregistered && !self.registered.contains_key(&id) {
            return Err(Error::Internal(format!(
                "provider `{}` is not registered: add it to a module's `providers`",
                type_name::<T>()
            )));
        }
        {
            let mut stack = self.resolving.lock();
            if stack.iter().any(|(t, _)| *t == id) {
                let mut chain: Vec<&str> = stack.iter().map(|(_, n)| *n).collect();
                chain.push(type_name::<T>());
                return Err(Error::Internal(format!(
                    "provider cycle: {}",
                    chain.join(" -> ")
                )));
            }
            stack.push((id, type_name::<T>()));
        }
        let created = T::create(self);
        self.resolving.lock().retain(|(t, _)| *t != id);
        let created = created?;
        let mut instances = self.instances.lock();
        let slot = instances.entry(id).or_insert_with(|| Box::new(created));
        slot.downcast_ref::<T>().cloned().ok_or_else(|| {
            Error::Internal(format!("provider `{}` has a wrong type", type_name::<T>()))
        })
    }

    /// The number of instances created (or provided) so far.
    pub fn instances_count(&self) -> usize {
        self.instances.lock().len()
    }

    fn cached<T: Injectable>(&self) -> Option<T> {
        self.instances
            .lock()
            .get(&TypeId::of::<T>())
            .and_then(|b| b.downcast_ref::<T>())
            .cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    static CREATED: AtomicUsize = AtomicUsize::new(0);

    #[derive(Clone, Debug)]
    struct Store(Arc<AtomicUsize>);
    impl Injectable for Store {
        fn create(_: &Container) -> Result<Self, Error> {
            CREATED.fetch_add(1, Ordering::SeqCst);
            Ok(Store(Arc::new(AtomicUsize::new(0))))
        }
    }

    #[derive(Clone)]
    struct UsesStore(Store);
    impl Injectable for UsesStore {
        fn create(c: &Container) -> Result<Self, Error> {
            Ok(UsesStore(c.resolve()?))
        }
    }

    #[derive(Clone, Debug)]
    struct Ping;
    #[derive(Clone)]
    struct Pong;
    impl Injectable for Ping {
        fn create(c: &Container) -> Result<Self, Error> {
            c.resolve::<Pong>().map(|_| Ping)
        }
    }
    impl Injectable for Pong {
        fn create(c: &Container) -> Result<Self, Error> {
            c.resolve::<Ping>().map(|_| Pong)
        }
    }

    #[test]
    fn one_instance_shared_by_dependents() {
        let mut c = Container::new();
        c.register::<Store>();
        c.register::<UsesStore>();
        let before = CREATED.load(Ordering::SeqCst);
        let a: UsesStore = c.resolve().unwrap();
        let b: Store = c.resolve().unwrap();
        assert!(Arc::ptr_eq(&a.0.0, &b.0));
        assert_eq!(CREATED.load(Ordering::SeqCst) - before, 1);
        assert_eq!(c.instances_count(), 2);
    }

    #[test]
    fn unregistered_is_an_error_naming_the_type() {
        let c = Container::new();
        let err = c.resolve::<Store>().unwrap_err();
        assert!(err.to_string().contains("Store"), "{err}");
        assert!(err.to_string().contains("not registered"), "{err}");
    }

    #[test]
    fn cycles_are_reported() {
        let mut c = Container::new();
        c.register::<Ping>();
        c.register::<Pong>();
        let err = c.resolve::<Ping>().unwrap_err();
        assert!(err.to_string().contains("provider cycle"), "{err}");
        assert!(err.to_string().contains("Ping -> "), "{err}");
    }

    #[test]
    fn provided_values_are_used() {
        let mut c = Container::new();
        let store = Store(Arc::new(AtomicUsize::new(7)));
        c.provide(store.clone());
        let got: Store = c.resolve().unwrap();
        assert!(Arc::ptr_eq(&got.0, &store.0));
    }
}
