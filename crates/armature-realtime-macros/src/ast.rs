//! The typed model of what the decorators are applied to: injectable services, controller
//! structs, controller `impl` blocks with their routes, and modules.

use proc_macro2::Span;
use syn::spanned::Spanned;
use syn::{FnArg, Ident, ImplItem, ItemImpl, ItemStruct, LitStr, Pat, Path, Type};

use crate::attr::{self, ArgAttr, ModuleArgs, RateLimit};

/// The kind of a route method.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum RouteKind {
    WebSocket,
    Sse,
}

impl RouteKind {
    pub(crate) fn attr_name(self) -> &'static str {
        match self {
            RouteKind::WebSocket => "websocket",
            RouteKind::Sse => "sse",
        }
    }
}

/// Where an argument of a route method comes from.
pub(crate) enum Source {
    /// A `:name` path parameter.
    Path(String),
    /// A query parameter with this key.
    Query(String),
    /// A header with this name.
    Header(String),
    /// The accepted `WebSocket` or `TypedSocket` (the upgrade happens before the call).
    Socket,
    /// The `PendingUpgrade`: the method accepts (or refuses) it itself.
    Pending,
    /// `&RequestHead`: the whole request head (method, URI, headers, parameters).
    Head,
    /// A `FromRequestHead` type: `Auth<T>` (what a guard produced) or `#[extract]`.
    Extract,
    /// Nothing the decorator knows: an error, reported by validation.
    Unknown,
    /// Its attribute was malformed; the error is already reported.
    Reported,
}

/// One argument of a route method (after the receiver).
pub(crate) struct Arg {
    pub(crate) ty: Type,
    pub(crate) source: Source,
    pub(crate) span: Span,
    /// The span of the `#[query]`/`#[header]` attribute, if any.
    pub(crate) attr_span: Option<Span>,
}

/// One `#[websocket]` / `#[sse]` method.
pub(crate) struct RouteMethod {
    pub(crate) kind: RouteKind,
    pub(crate) path: LitStr,
    pub(crate) sig: syn::Signature,
    pub(crate) args: Vec<Arg>,
    /// `#[use_guards(..)]` of the method.
    pub(crate) guards: Vec<Type>,
    /// `#[rate_limit(messages = ..)]` of the method (WebSocket routes).
    pub(crate) message_limit: Option<RateLimit>,
    /// `#[rate_limit(connections = .., concurrent = ..)]` of the method.
    pub(crate) connection_limit: Option<RateLimit>,
}

impl RouteMethod {
    /// The type that declares this route's message types, if any: a `TypedSocket<..>`
    /// argument of a `#[websocket]` method, or a `TypedEvents<..>` (or `Result` of one)
    /// return type of an `#[sse]` method.
    pub(crate) fn messages_type(&self) -> Option<Type> {
        match self.kind {
            RouteKind::WebSocket => self
                .args
                .iter()
                .find(|a| {
                    matches!(a.source, Source::Socket)
                        && last_segment(&a.ty).as_deref() == Some("TypedSocket")
                })
                .map(|a| a.ty.clone()),
            RouteKind::Sse => {
                let syn::ReturnType::Type(_, ty) = &self.sig.output else {
                    return None;
                };
                let named = match last_segment(ty).as_deref() {
                    Some("TypedEvents") => true,
                    Some("Result") => match &**ty {
                        Type::Path(p) => p.path.segments.last().is_some_and(|seg| {
                            matches!(&seg.arguments, syn::PathArguments::AngleBracketed(args)
                                if matches!(args.args.first(),
                                    Some(syn::GenericArgument::Type(ok))
                                        if last_segment(ok).as_deref() == Some("TypedEvents")))
                        }),
                        _ => false,
                    },
                    _ => false,
                };
                named.then(|| (**ty).clone())
            }
        }
    }
}

/// A `#[controller]` `impl` block: the item (decorator attributes removed) and its routes.
pub(crate) struct ControllerImpl {
    pub(crate) item: ItemImpl,
    pub(crate) routes: Vec<RouteMethod>,
    /// `#[use_guards(..)]` of the block: they run for every route, before the method's.
    pub(crate) guards: Vec<Type>,
}

/// A `#[controller("/prefix")]` struct.
pub(crate) struct ControllerStruct {
    pub(crate) item: ItemStruct,
    pub(crate) prefix: LitStr,
    /// Per field: injected from the container (`false`) or `Default::default()` (`true`).
    pub(crate) field_defaults: Vec<bool>,
    /// `#[use_guards(..)]` on the struct: they run for every route, first.
    pub(crate) guards: Vec<Type>,
}

/// An `#[injectable]` struct.
pub(crate) struct InjectableStruct {
    pub(crate) item: ItemStruct,
    /// `None`: the whole value is `Default::default()`. `Some(v)`: per field, injected
    /// (`true`) or `Default::default()` (`false`).
    pub(crate) injected: Option<Vec<bool>>,
}

/// A `#[module(..)]` struct.
pub(crate) struct ModuleDef {
    pub(crate) ident: Ident,
    pub(crate) args: ModuleArgs,
}

/// Collects several errors into one.
#[derive(Default)]
pub(crate) struct Errors(Option<syn::Error>);

impl Errors {
    pub(crate) fn push(&mut self, err: syn::Error) {
        match &mut self.0 {
            Some(all) => all.combine(err),
            None => self.0 = Some(err),
        }
    }

    pub(crate) fn spanned(&mut self, span: Span, msg: impl std::fmt::Display) {
        self.push(syn::Error::new(span, msg));
    }

    /// An error covering all of `tokens` (from their first to their last token).
    pub(crate) fn spanned_tokens(
        &mut self,
        tokens: impl quote::ToTokens,
        msg: impl std::fmt::Display,
    ) {
        self.push(syn::Error::new_spanned(tokens, msg));
    }

    pub(crate) fn finish(self) -> Result<(), syn::Error> {
        self.0.map_or(Ok(()), Err)
    }
}

impl ControllerImpl {
    /// Reads an `impl` block, removing the decorators' attributes from it (they are not
    /// attributes the compiler knows). Parse errors are collected in `errors`; the item is
    /// returned cleaned either way.
    pub(crate) fn from_item(mut item: ItemImpl, errors: &mut Errors) -> Self {
        let mut routes = Vec::new();
        for impl_item in &mut item.items {
            let ImplItem::Fn(method) = impl_item else {
                continue;
            };
            let route_attrs = attr::take_route_attrs(&mut method.attrs);
            let guards = attr::take_guards(&mut method.attrs).unwrap_or_else(|e| {
                errors.push(e);
                Vec::new()
            });
            let rate_limits = attr::take_rate_limits(&mut method.attrs).unwrap_or_else(|e| {
                errors.push(e);
                Vec::new()
            });
            let rate_limit_span = method.sig.ident.span();
            // Argument attributes are removed from every method, decorated or not, so a
            // stray `#[query]` is reported by us rather than as an unknown attribute.
            let mut args = Vec::new();
            for input in &mut method.sig.inputs {
                let FnArg::Typed(pat_type) = input else {
                    continue;
                };
                let ident = match &*pat_type.pat {
                    Pat::Ident(p) => Some(p.ident.clone()),
                    _ => None,
                };
                let (source, attr_span) = match attr::take_arg_attr(&mut pat_type.attrs) {
                    Ok(arg_attr) => classify(ident.as_ref(), &pat_type.ty, arg_attr),
                    Err(e) => {
                        errors.push(e);
                        (Source::Reported, None)
                    }
                };
                args.push(Arg {
                    ty: (*pat_type.ty).clone(),
                    source,
                    span: pat_type.span(),
                    attr_span,
                });
            }
            let mut parsed = Vec::new();
            for route_attr in route_attrs {
                match route_attr {
                    Ok(a) => parsed.push(a),
                    Err(e) => errors.push(e),
                }
            }
            if parsed.len() > 1 {
                errors.spanned_tokens(
                    &parsed[1].tokens,
                    "a method takes one route attribute: `#[websocket]` or `#[sse]`, once",
                );
            }
            if parsed.first().is_some_and(|r| r.kind == RouteKind::Sse) {
                capture_nothing(&mut method.sig.output);
            }
            let Some(route) = parsed.into_iter().next() else {
                if !rate_limits.is_empty() {
                    errors.spanned(
                        rate_limit_span,
                        "`#[rate_limit]` works only on `#[websocket]` and `#[sse]` methods",
                    );
                }
                if let Some(arg) = args.iter().find(|a| a.attr_span.is_some()) {
                    errors.spanned(
                        arg.attr_span.unwrap_or(arg.span),
                        "`#[query]` and `#[header]` work only on `#[websocket]` and `#[sse]` methods",
                    );
                }
                continue;
            };
            let mut message_limit = None;
            let mut connection_limit = None;
            for limit in rate_limits {
                match limit {
                    RateLimit::Messages { span, .. } if route.kind == RouteKind::Sse => errors
                        .spanned(
                            span,
                            "a message limit is for `#[websocket]` routes (an SSE client sends no messages); limit its connections with `connections = ..` / `concurrent = ..`",
                        ),
                    RateLimit::Messages { span, .. } if message_limit.is_some() => {
                        errors.spanned(span, "one message limit per route")
                    }
                    m @ RateLimit::Messages { .. } => message_limit = Some(m),
                    _ if connection_limit.is_some() => errors.spanned(
                        rate_limit_span,
                        "one connection limit per route (`connections` and `concurrent` go in one `#[rate_limit]`)",
                    ),
                    c => connection_limit = Some(c),
                }
            }
            routes.push(RouteMethod {
                kind: route.kind,
                path: route.path,
                sig: method.sig.clone(),
                args,
                guards,
                message_limit,
                connection_limit,
            });
        }
        let guards = attr::take_guards(&mut item.attrs).unwrap_or_else(|e| {
            errors.push(e);
            Vec::new()
        });
        Self {
            item,
            routes,
            guards,
        }
    }

    /// The type the block implements.
    pub(crate) fn self_ty(&self) -> &Type {
        &self.item.self_ty
    }
}

/// An `#[sse]` handler's `impl Stream` outlives the call, so it must not capture `&self`'s
/// lifetime (edition 2024 captures every lifetime in scope by default): add `use<>` unless
/// the handler already says what it captures.
fn capture_nothing(output: &mut syn::ReturnType) {
    let syn::ReturnType::Type(_, ty) = output else {
        return;
    };
    let impl_trait = match &mut **ty {
        Type::ImplTrait(t) => t,
        // `Result<impl Stream<..>, E>`
        Type::Path(p) => {
            let Some(last) = p.path.segments.last_mut() else {
                return;
            };
            let syn::PathArguments::AngleBracketed(args) = &mut last.arguments else {
                return;
            };
            match args.args.first_mut() {
                Some(syn::GenericArgument::Type(Type::ImplTrait(t))) if last.ident == "Result" => t,
                _ => return,
            }
        }
        _ => return,
    };
    let has_use = impl_trait
        .bounds
        .iter()
        .any(|b| matches!(b, syn::TypeParamBound::PreciseCapture(_)));
    if !has_use {
        impl_trait.bounds.push(syn::parse_quote!(use<>));
    }
}

/// Decides where an argument comes from: its attribute, else a path parameter of the same
/// name (decided later, against the path), else its type.
fn classify(ident: Option<&Ident>, ty: &Type, attr: Option<ArgAttr>) -> (Source, Option<Span>) {
    let name = ident.map(|i| i.to_string().trim_start_matches("r#").to_owned());
    match attr {
        Some(ArgAttr::Query(key, span)) => {
            let key = key.map(|k| k.value()).or(name).unwrap_or_default();
            (Source::Query(key), Some(span))
        }
        Some(ArgAttr::Extract(span)) => (Source::Extract, Some(span)),
        Some(ArgAttr::Header(key, span)) => {
            let key = key
                .map(|k| k.value())
                .or_else(|| name.map(|n| n.replace('_', "-")))
                .unwrap_or_default();
            (Source::Header(key.to_ascii_lowercase()), Some(span))
        }
        None if is_head_ref(ty) => (Source::Head, None),
        None => match last_segment(ty).as_deref() {
            Some("WebSocket" | "TypedSocket") => (Source::Socket, None),
            Some("PendingUpgrade") => (Source::Pending, None),
            Some("Auth") => (Source::Extract, None),
            _ => match name {
                // Checked against the route's path by validation.
                Some(name) => (Source::Path(name), None),
                None => (Source::Unknown, None),
            },
        },
    }
}

/// `&RequestHead` (any path to it).
fn is_head_ref(ty: &Type) -> bool {
    matches!(ty, Type::Reference(r) if r.mutability.is_none()
        && last_segment(&r.elem).as_deref() == Some("RequestHead"))
}

/// The last segment's name of a path type (`a::b::WebSocket` → `WebSocket`).
pub(crate) fn last_segment(ty: &Type) -> Option<String> {
    match ty {
        Type::Path(p) if p.qself.is_none() => p.path.segments.last().map(|s| s.ident.to_string()),
        Type::Group(g) => last_segment(&g.elem),
        Type::Paren(p) => last_segment(&p.elem),
        _ => None,
    }
}

impl ControllerStruct {
    /// Reads a controller struct, removing `#[inject(..)]` from its fields.
    pub(crate) fn from_item(mut item: ItemStruct, prefix: LitStr, errors: &mut Errors) -> Self {
        let guards = attr::take_guards(&mut item.attrs).unwrap_or_else(|e| {
            errors.push(e);
            Vec::new()
        });
        let mut field_defaults = Vec::new();
        for field in item.fields.iter_mut() {
            match attr::take_inject_attr(&mut field.attrs) {
                Ok(flag) => field_defaults.push(flag.unwrap_or(false)),
                Err(e) => {
                    errors.push(e);
                    field_defaults.push(false);
                }
            }
        }
        Self {
            item,
            prefix,
            field_defaults,
            guards,
        }
    }
}

impl InjectableStruct {
    /// Reads an injectable struct, removing `#[inject]` from its fields.
    pub(crate) fn from_item(mut item: ItemStruct, errors: &mut Errors) -> Self {
        let mut flags = Vec::new();
        for field in item.fields.iter_mut() {
            match attr::take_inject_attr(&mut field.attrs) {
                Ok(Some(true)) => {
                    errors.spanned(
                        field.span(),
                        "fields of an `#[injectable]` are `Default::default()` unless marked `#[inject]`; `#[inject(default)]` is for controllers",
                    );
                    flags.push(false);
                }
                Ok(flag) => flags.push(flag.is_some()),
                Err(e) => {
                    errors.push(e);
                    flags.push(false);
                }
            }
        }
        let injected = flags.iter().any(|f| *f).then_some(flags);
        Self { item, injected }
    }
}

impl ModuleDef {
    pub(crate) fn new(ident: Ident, args: ModuleArgs) -> Self {
        Self { ident, args }
    }

    /// Every listed path with its list's name.
    pub(crate) fn entries(&self) -> impl Iterator<Item = (&'static str, &Path)> {
        self.args
            .providers
            .iter()
            .map(|p| ("providers", p))
            .chain(self.args.controllers.iter().map(|p| ("controllers", p)))
            .chain(self.args.imports.iter().map(|p| ("imports", p)))
    }
}
