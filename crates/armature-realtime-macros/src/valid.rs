//! Checks with spanned errors: paths, handler signatures, arguments against the path, route
//! duplicates, and `#[sse]` return types.

use syn::spanned::Spanned;
use syn::{FnArg, GenericArgument, LitStr, PathArguments, ReturnType, Type};

use crate::ast::{ControllerImpl, Errors, ModuleDef, RouteKind, RouteMethod, Source};

/// A segment of a route path, as the decorators check it.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum Seg {
    Static(String),
    Param(String),
    Rest(String),
}

/// Parses and checks a path literal: starts with `/`, no empty segment, `:name`/`*name` with
/// a name of letters, digits and `_`, `*name` last, each name once.
pub(crate) fn path(lit: &LitStr) -> syn::Result<Vec<Seg>> {
    let value = lit.value();
    let err = |msg: String| syn::Error::new(lit.span(), msg);
    let Some(rest) = value.strip_prefix('/') else {
        return Err(err(format!(
            "malformed path `{value}`: a path starts with `/`"
        )));
    };
    let mut segs = Vec::new();
    if rest.is_empty() {
        return Ok(segs);
    }
    let parts: Vec<&str> = rest.strip_suffix('/').unwrap_or(rest).split('/').collect();
    for (i, part) in parts.iter().enumerate() {
        let seg = if let Some(name) = part.strip_prefix(':') {
            Seg::Param(name.to_owned())
        } else if let Some(name) = part.strip_prefix('*') {
            if i + 1 != parts.len() {
                return Err(err(format!(
                    "malformed path `{value}`: `*{name}` must be last"
                )));
            }
            Seg::Rest(name.to_owned())
        } else if part.is_empty() {
            return Err(err(format!("malformed path `{value}`: empty segment")));
        } else if part.contains(['?', '#', ' ']) {
            return Err(err(format!(
                "malformed path `{value}`: `?`, `#` and spaces are not allowed in a route path"
            )));
        } else {
            Seg::Static((*part).to_owned())
        };
        if let Seg::Param(name) | Seg::Rest(name) = &seg {
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(err(format!(
                    "malformed path `{value}`: bad parameter name `{name}`"
                )));
            }
            if segs
                .iter()
                .any(|s| matches!(s, Seg::Param(n) | Seg::Rest(n) if n == name))
            {
                return Err(err(format!(
                    "malformed path `{value}`: parameter `{name}` appears twice"
                )));
            }
        }
        segs.push(seg);
    }
    Ok(segs)
}

/// Checks a controller prefix: a well-formed path without parameters (they would have no
/// argument to go to).
pub(crate) fn prefix(lit: &LitStr) -> syn::Result<()> {
    if path(lit)?.iter().any(|s| !matches!(s, Seg::Static(_))) {
        return Err(syn::Error::new(
            lit.span(),
            format!(
                "a controller prefix cannot hold parameters (`{}`): put them in the route paths",
                lit.value()
            ),
        ));
    }
    Ok(())
}

/// Two paths match the same requests (names of parameters aside).
fn same_shape(a: &[Seg], b: &[Seg]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|pair| match pair {
            (Seg::Static(x), Seg::Static(y)) => x == y,
            (Seg::Param(_), Seg::Param(_)) | (Seg::Rest(_), Seg::Rest(_)) => true,
            _ => false,
        })
}

/// Checks every route of a controller `impl` block.
pub(crate) fn controller_impl(imp: &ControllerImpl, errors: &mut Errors) {
    if !imp.item.generics.params.is_empty() {
        errors.spanned_tokens(
            &imp.item.generics,
            "a `#[controller]` impl block cannot be generic",
        );
    }
    if let Some((_, trait_path, _)) = &imp.item.trait_ {
        errors.spanned(
            trait_path.span(),
            "`#[controller]` goes on the controller's inherent `impl` block, not a trait impl",
        );
    }
    let mut seen: Vec<(Vec<Seg>, String, String)> = Vec::new();
    for route in &imp.routes {
        let segs = match path(&route.path) {
            Ok(s) => s,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        if let Some((_, other_path, other)) = seen.iter().find(|(s, _, _)| same_shape(s, &segs)) {
            errors.spanned(
                route.path.span(),
                format!(
                    "duplicate route: `{}` matches the same requests as `{other_path}` of `{other}`",
                    route.path.value(),
                ),
            );
        }
        seen.push((
            segs.clone(),
            route.path.value(),
            route.sig.ident.to_string(),
        ));
        route_method(route, &segs, errors);
    }
}

fn route_method(route: &RouteMethod, segs: &[Seg], errors: &mut Errors) {
    let attr = route.kind.attr_name();
    let sig = &route.sig;
    if sig.asyncness.is_none() {
        errors.spanned(
            sig.fn_token.span(),
            format!("a `#[{attr}]` handler must be an `async fn`"),
        );
    }
    if !sig.generics.params.is_empty() {
        errors.spanned_tokens(
            &sig.generics,
            format!("a `#[{attr}]` handler cannot be generic"),
        );
    }
    match sig.inputs.first() {
        Some(FnArg::Receiver(r)) if r.reference.is_some() && r.mutability.is_none() => {}
        Some(FnArg::Receiver(r)) => errors.spanned_tokens(
            r,
            format!("a `#[{attr}]` handler takes `&self` (the controller is shared)"),
        ),
        _ => errors.spanned(
            sig.ident.span(),
            format!("a `#[{attr}]` handler takes `&self` as its first argument"),
        ),
    }

    let params: Vec<&str> = segs
        .iter()
        .filter_map(|s| match s {
            Seg::Param(n) | Seg::Rest(n) => Some(n.as_str()),
            Seg::Static(_) => None,
        })
        .collect();
    for name in &params {
        let has_arg = route
            .args
            .iter()
            .any(|a| matches!(&a.source, Source::Path(n) if n == name));
        if !has_arg {
            errors.spanned(
                route.path.span(),
                format!("path parameter `{name}` has no argument: add `{name}: String` (or another `FromParam` type) to `{}`", sig.ident),
            );
        }
    }

    let mut sockets = 0;
    for arg in &route.args {
        match &arg.source {
            Source::Path(name) if !params.contains(&name.as_str()) => errors.spanned(
                arg.span,
                format!(
                    "unknown argument `{name}`: it is not a parameter of `{}`; mark it `#[query]` or `#[header]`, or take a `WebSocket`, `PendingUpgrade` or `&RequestHead`",
                    route.path.value()
                ),
            ),
            Source::Unknown => errors.spanned(
                arg.span,
                "unknown argument: a handler argument is a plain name (`room: String`)",
            ),
            Source::Reported => {}
            Source::Query(key) | Source::Header(key) if key.is_empty() => {
                errors.spanned(arg.span, "an empty name cannot be looked up")
            }
            Source::Socket | Source::Pending => {
                sockets += 1;
                if route.kind == RouteKind::Sse {
                    errors.spanned(
                        arg.ty.span(),
                        "`WebSocket` and `PendingUpgrade` arguments belong to `#[websocket]` handlers",
                    );
                } else if sockets > 1 {
                    errors.spanned(
                        arg.ty.span(),
                        "a `#[websocket]` handler takes one `WebSocket` or `PendingUpgrade`",
                    );
                }
            }
            _ => {}
        }
    }
    if route.kind == RouteKind::WebSocket && sockets == 0 {
        errors.spanned(
            sig.ident.span(),
            "a `#[websocket]` handler needs the connection: add a `socket: WebSocket` argument (upgraded before the call) or `upgrade: PendingUpgrade` (to refuse with a status before upgrading)",
        );
    }
    if route.kind == RouteKind::Sse {
        sse_return(sig, errors);
    }
}

const NOT_STREAMS: &[&str] = &[
    "String",
    "str",
    "bool",
    "char",
    "u8",
    "u16",
    "u32",
    "u64",
    "u128",
    "usize",
    "i8",
    "i16",
    "i32",
    "i64",
    "i128",
    "isize",
    "f32",
    "f64",
    "Vec",
    "Option",
    "HashMap",
    "BTreeMap",
    "ServerSentEvent",
    "Bytes",
];

/// An `#[sse]` method must return something that becomes an event stream.
fn sse_return(sig: &syn::Signature, errors: &mut Errors) {
    let output = &sig.output;
    const HELP: &str = "an `#[sse]` handler returns an event stream: `ReceiverStream<..>` (from `SseBroadcaster::register`), `EventStream<S>`, `impl Stream<Item = ServerSentEvent>`, an SSE `http::Response`, or `Result<_, Error>` of one of these";
    let ty = match output {
        ReturnType::Default => {
            errors.spanned(sig.ident.span(), format!("missing return type: {HELP}"));
            return;
        }
        ReturnType::Type(_, ty) => ty,
    };
    if let Some(msg) = not_a_stream(ty) {
        errors.spanned(ty.span(), format!("{msg}: {HELP}"));
    }
}

fn not_a_stream(ty: &Type) -> Option<String> {
    match ty {
        Type::Tuple(t) if t.elems.is_empty() => Some("`()` is not an event stream".into()),
        Type::Tuple(_)
        | Type::Array(_)
        | Type::Slice(_)
        | Type::Reference(_)
        | Type::Ptr(_)
        | Type::BareFn(_)
        | Type::Never(_) => Some("this type is not an event stream".into()),
        Type::Paren(p) => not_a_stream(&p.elem),
        Type::Group(g) => not_a_stream(&g.elem),
        Type::Path(p) => {
            let last = p.path.segments.last()?;
            let name = last.ident.to_string();
            if name == "Result" {
                if let PathArguments::AngleBracketed(args) = &last.arguments
                    && let Some(GenericArgument::Type(ok)) = args.args.first()
                {
                    return not_a_stream(ok);
                }
                return None;
            }
            NOT_STREAMS
                .contains(&name.as_str())
                .then(|| format!("`{name}` is not an event stream"))
        }
        _ => None,
    }
}

/// How an `#[sse]` handler's return type is wrapped into something `IntoSse`.
pub(crate) enum StreamWrap {
    /// Returned as is.
    None,
    /// `impl Stream`: wrapped in an `EventStream`.
    Stream,
    /// `Result<impl Stream, E>`: the `Ok` value wrapped in an `EventStream`.
    ResultStream,
}

/// Decides the [`StreamWrap`] for a return type.
pub(crate) fn stream_wrap(ty: &Type) -> StreamWrap {
    if is_impl_stream(ty) {
        return StreamWrap::Stream;
    }
    if let Type::Path(p) = ty
        && let Some(last) = p.path.segments.last()
        && last.ident == "Result"
        && let PathArguments::AngleBracketed(args) = &last.arguments
        && let Some(GenericArgument::Type(ok)) = args.args.first()
        && is_impl_stream(ok)
    {
        return StreamWrap::ResultStream;
    }
    StreamWrap::None
}

/// True when `ty` is `impl ..Stream..`.
fn is_impl_stream(ty: &Type) -> bool {
    match ty {
        Type::ImplTrait(t) => t.bounds.iter().any(|b| match b {
            syn::TypeParamBound::Trait(tb) => {
                tb.path.segments.last().is_some_and(|s| s.ident == "Stream")
            }
            _ => false,
        }),
        _ => false,
    }
}

/// Checks a module's lists: no entry twice, paths that name types.
pub(crate) fn module(def: &ModuleDef, errors: &mut Errors) {
    let mut seen: Vec<(String, &str)> = Vec::new();
    for (list, path) in def.entries() {
        let key = quote::quote!(#path).to_string();
        if let Some((_, first)) = seen.iter().find(|(k, _)| *k == key) {
            errors.spanned(
                path.span(),
                format!("`{key}` is listed twice (first in `{first}`)"),
            );
        }
        seen.push((key, list));
    }
}
