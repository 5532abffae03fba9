//! The decorators of Armature Realtime: `#[injectable]`, `#[controller("/prefix")]`,
//! `#[module(..)]`, and on controller methods `#[websocket("/path")]` and `#[sse("/path")]`.
//!
//! Use them through the facade crate `armature-realtime` (its prelude re-exports them); the
//! code they generate names only public paths of the facade, so a user depends on one
//! crate. The facade's crate docs show them at work; this crate's source follows
//! thiserror's shape: `ast.rs` (the typed model), `attr.rs` (attribute parsing), `valid.rs`
//! (spanned checks) and `expand.rs` (code generation). On an error the macros emit the
//! error *and* the item (decorator attributes removed), so one mistake does not cascade.

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::ToTokens;
use syn::{Item, ItemStruct};

mod ast;
mod attr;
mod expand;
mod valid;

use ast::{ControllerImpl, ControllerStruct, Errors, InjectableStruct, ModuleDef};

/// Marks a service the app creates once and shares: every controller or service that
/// needs it gets a clone of that one instance (services are `Clone` handles, typically
/// holding `Arc`s).
///
/// The instance is `Default::default()`; fields marked `#[inject]` are instead resolved
/// from the app's container (other providers), the rest still `Default::default()`.
/// Register the service in a `#[module(providers: [..])]`.
#[proc_macro_attribute]
pub fn injectable(args: TokenStream, input: TokenStream) -> TokenStream {
    let args = TokenStream2::from(args);
    let input2 = TokenStream2::from(input.clone());
    let item: ItemStruct = match syn::parse2(input2.clone()) {
        Ok(item) => item,
        Err(_) => {
            return error_with(
                input2,
                syn::Error::new(Span::call_site(), "`#[injectable]` goes on a struct"),
            );
        }
    };
    let mut errors = Errors::default();
    if !args.is_empty() {
        errors.push(syn::Error::new_spanned(
            &args,
            "`#[injectable]` takes no arguments",
        ));
    }
    if !item.generics.params.is_empty() {
        errors.push(syn::Error::new_spanned(
            &item.generics,
            "an `#[injectable]` cannot be generic",
        ));
    }
    let def = InjectableStruct::from_item(item, &mut errors);
    match errors.finish() {
        Ok(()) => expand::injectable(&def).into(),
        Err(e) => error_with(def.item.to_token_stream(), e),
    }
}

/// Declares a controller.
///
/// On the struct, with the route prefix: `#[controller("/ws")]`. Every field is a service
/// resolved from the app's container (mark a field `#[inject(default)]` to use
/// `Default::default()` instead).
///
/// On the controller's `impl` block, without arguments: `#[controller]`. Its methods marked
/// `#[websocket("/path")]` or `#[sse("/path")]` become routes under the prefix. A handler is
/// an `async fn(&self, ..)`; its arguments are, by name, the `:params` of its path, then
/// `#[query]`/`#[query("key")]` and `#[header]`/`#[header("name")]` arguments, a
/// `&RequestHead` (the whole request head), and for `#[websocket]` one `WebSocket` (upgraded
/// before the call) or `PendingUpgrade` (the handler may refuse with
/// `Err(Error::Http { status, .. })` before accepting it).
#[proc_macro_attribute]
pub fn controller(args: TokenStream, input: TokenStream) -> TokenStream {
    let args = TokenStream2::from(args);
    let input2 = TokenStream2::from(input);
    match syn::parse2::<Item>(input2.clone()) {
        Ok(Item::Struct(item)) => {
            let mut errors = Errors::default();
            let prefix = match attr::path_literal(args, "controller", Span::call_site())
                .and_then(|lit| valid::prefix(&lit).map(|()| lit))
            {
                Ok(lit) => Some(lit),
                Err(e) => {
                    errors.push(e);
                    None
                }
            };
            if !item.generics.params.is_empty() {
                errors.push(syn::Error::new_spanned(
                    &item.generics,
                    "a controller cannot be generic",
                ));
            }
            let lit = prefix.unwrap_or_else(|| syn::LitStr::new("/", Span::call_site()));
            let def = ControllerStruct::from_item(item, lit, &mut errors);
            match errors.finish() {
                Ok(()) => expand::controller_struct(&def).into(),
                Err(e) => error_with(def.item.to_token_stream(), e),
            }
        }
        Ok(Item::Impl(item)) => {
            let mut errors = Errors::default();
            if !args.is_empty() {
                errors.push(syn::Error::new_spanned(
                    &args,
                    "the prefix goes on the controller struct; write `#[controller]` on its impl block",
                ));
            }
            let def = ControllerImpl::from_item(item, &mut errors);
            valid::controller_impl(&def, &mut errors);
            match errors.finish() {
                Ok(()) => expand::controller_impl(&def).into(),
                Err(e) => {
                    let mut out = e.to_compile_error();
                    out.extend(expand::controller_impl_fallback(&def));
                    out.into()
                }
            }
        }
        _ => error_with(
            input2,
            syn::Error::new(
                Span::call_site(),
                "`#[controller]` goes on a struct (with its prefix) or on its impl block",
            ),
        ),
    }
}

/// Declares a module: `#[module(providers: [A, B], controllers: [C], imports: [Other])]`.
/// Every key is optional.
#[proc_macro_attribute]
pub fn module(args: TokenStream, input: TokenStream) -> TokenStream {
    let input2 = TokenStream2::from(input);
    let item: ItemStruct = match syn::parse2(input2.clone()) {
        Ok(item) => item,
        Err(_) => {
            return error_with(
                input2,
                syn::Error::new(Span::call_site(), "`#[module]` goes on a struct"),
            );
        }
    };
    let args = match syn::parse::<attr::ModuleArgs>(args) {
        Ok(args) => args,
        Err(e) => return error_with(item.to_token_stream(), e),
    };
    let def = ModuleDef::new(item.ident.clone(), args);
    let mut errors = Errors::default();
    valid::module(&def, &mut errors);
    match errors.finish() {
        Ok(()) => expand::module(&def, &item).into(),
        Err(e) => error_with(item.to_token_stream(), e),
    }
}

/// Marks a WebSocket route of a controller. It is read by `#[controller]` on the enclosing
/// `impl` block; on its own it is an error.
#[proc_macro_attribute]
pub fn websocket(_args: TokenStream, input: TokenStream) -> TokenStream {
    outside_controller("websocket", input)
}

/// Marks a Server-Sent Events route of a controller. It is read by `#[controller]` on the
/// enclosing `impl` block; on its own it is an error.
#[proc_macro_attribute]
pub fn sse(_args: TokenStream, input: TokenStream) -> TokenStream {
    outside_controller("sse", input)
}

fn outside_controller(name: &str, input: TokenStream) -> TokenStream {
    error_with(
        input.into(),
        syn::Error::new(
            Span::call_site(),
            format!(
                "`#[{name}]` works inside an impl block marked `#[controller]`: add `#[controller]` to the impl block"
            ),
        ),
    )
}

/// The error followed by the item, so the rest of the code still sees the item.
fn error_with(item: TokenStream2, err: syn::Error) -> TokenStream {
    let mut out = err.to_compile_error();
    out.extend(item);
    out.into()
}
