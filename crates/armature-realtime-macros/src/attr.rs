//! Reading the decorators' own attributes: `#[controller("/prefix")]`,
//! `#[module(providers: [..], controllers: [..], imports: [..])]`, `#[websocket("/path")]`,
//! `#[sse("/path")]`, and `#[query]` / `#[header]` / `#[inject]` on arguments and fields.

use proc_macro2::{Span, TokenStream};
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Attribute, Ident, LitStr, Path, Token, bracketed};

use crate::ast::RouteKind;

/// Parses the arguments of an attribute that takes exactly one path string.
pub(crate) fn path_literal(args: TokenStream, what: &str, call_site: Span) -> syn::Result<LitStr> {
    if args.is_empty() {
        return Err(syn::Error::new(
            call_site,
            format!("missing path: write `#[{what}(\"/path\")]`"),
        ));
    }
    syn::parse2::<LitStr>(args.clone()).map_err(|_| {
        syn::Error::new_spanned(
            args,
            format!("expected one path string, as in `#[{what}(\"/path\")]`"),
        )
    })
}

/// The lists of `#[module(..)]`.
#[derive(Default)]
pub(crate) struct ModuleArgs {
    pub(crate) providers: Vec<Path>,
    pub(crate) controllers: Vec<Path>,
    pub(crate) imports: Vec<Path>,
}

struct ModuleEntry {
    key: Ident,
    paths: Punctuated<Path, Token![,]>,
}

impl Parse for ModuleEntry {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let key: Ident = input.parse()?;
        input.parse::<Token![:]>()?;
        if !input.peek(syn::token::Bracket) {
            return Err(input.error(format!(
                "expected a list after `{key}:`, as in `{key}: [A, B]`"
            )));
        }
        let content;
        bracketed!(content in input);
        let paths = content.parse_terminated(Path::parse, Token![,])?;
        Ok(Self { key, paths })
    }
}

impl Parse for ModuleArgs {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let entries = input.parse_terminated(ModuleEntry::parse, Token![,])?;
        let mut args = ModuleArgs::default();
        let mut seen: Vec<String> = Vec::new();
        for entry in entries {
            let key = entry.key.to_string();
            if seen.contains(&key) {
                return Err(syn::Error::new(
                    entry.key.span(),
                    format!("`{key}` given twice"),
                ));
            }
            seen.push(key.clone());
            let list = match key.as_str() {
                "providers" => &mut args.providers,
                "controllers" => &mut args.controllers,
                "imports" => &mut args.imports,
                _ => {
                    return Err(syn::Error::new(
                        entry.key.span(),
                        format!(
                            "unknown module key `{key}`: expected `providers`, `controllers` or `imports`"
                        ),
                    ));
                }
            };
            list.extend(entry.paths);
        }
        Ok(args)
    }
}

/// Where a handler argument's value comes from, as its attribute says.
pub(crate) enum ArgAttr {
    /// `#[query]` or `#[query("key")]`.
    Query(Option<LitStr>, Span),
    /// `#[header]` or `#[header("name")]`.
    Header(Option<LitStr>, Span),
    /// `#[extract]`: the type implements `FromRequestHead`.
    Extract(Span),
}

/// Removes `#[query]` / `#[header]` from an argument's attributes and returns it.
pub(crate) fn take_arg_attr(attrs: &mut Vec<Attribute>) -> syn::Result<Option<ArgAttr>> {
    let mut found = None;
    let mut error: Option<syn::Error> = None;
    attrs.retain(|attr| {
        let name = if attr.path().is_ident("query") {
            "query"
        } else if attr.path().is_ident("header") {
            "header"
        } else if attr.path().is_ident("extract") {
            if found.is_some() {
                let e = syn::Error::new(attr.span(), "an argument takes one argument attribute");
                match &mut error {
                    Some(all) => all.combine(e),
                    None => error = Some(e),
                }
            } else {
                found = Some(ArgAttr::Extract(attr.span()));
            }
            return false;
        } else {
            return true;
        };
        let key = match &attr.meta {
            syn::Meta::Path(_) => Ok(None),
            syn::Meta::List(list) => syn::parse2::<LitStr>(list.tokens.clone())
                .map(Some)
                .map_err(|_| {
                    syn::Error::new_spanned(
                        &list.tokens,
                        format!("expected a name string, as in `#[{name}(\"name\")]`"),
                    )
                }),
            syn::Meta::NameValue(nv) => Err(syn::Error::new_spanned(
                nv,
                format!("write `#[{name}]` or `#[{name}(\"name\")]`"),
            )),
        };
        let parsed = key.and_then(|key| {
            if found.is_some() {
                return Err(syn::Error::new(
                    attr.span(),
                    "an argument takes at most one of `#[query]` and `#[header]`",
                ));
            }
            Ok(if name == "query" {
                ArgAttr::Query(key, attr.span())
            } else {
                ArgAttr::Header(key, attr.span())
            })
        });
        match parsed {
            Ok(arg) => found = Some(arg),
            Err(e) => match &mut error {
                Some(all) => all.combine(e),
                None => error = Some(e),
            },
        }
        false
    });
    match error {
        Some(e) => Err(e),
        None => Ok(found),
    }
}

/// A `#[websocket("/path")]` or `#[sse("/path")]` found on a method.
pub(crate) struct RouteAttr {
    pub(crate) kind: RouteKind,
    pub(crate) path: LitStr,
    /// The whole attribute, for error spans.
    pub(crate) tokens: TokenStream,
}

/// Removes the route attributes from a method's attributes and parses them.
pub(crate) fn take_route_attrs(attrs: &mut Vec<Attribute>) -> Vec<syn::Result<RouteAttr>> {
    let mut found = Vec::new();
    attrs.retain(|attr| {
        let (kind, name) = if attr.path().is_ident("websocket") {
            (RouteKind::WebSocket, "websocket")
        } else if attr.path().is_ident("sse") {
            (RouteKind::Sse, "sse")
        } else {
            return true;
        };
        let parsed = match &attr.meta {
            syn::Meta::List(list) if list.tokens.is_empty() => Err(syn::Error::new_spanned(
                attr,
                format!("missing path: write `#[{name}(\"/path\")]`"),
            )),
            syn::Meta::List(list) => path_literal(list.tokens.clone(), name, attr.span()),
            _ => Err(syn::Error::new_spanned(
                attr,
                format!("missing path: write `#[{name}(\"/path\")]`"),
            )),
        };
        found.push(parsed.map(|path| RouteAttr {
            kind,
            path,
            tokens: quote::ToTokens::to_token_stream(attr),
        }));
        false
    });
    found
}

/// Removes `#[inject]` / `#[inject(default)]` from a field; `Some(true)` for `default`.
pub(crate) fn take_inject_attr(attrs: &mut Vec<Attribute>) -> syn::Result<Option<bool>> {
    let mut result = Ok(None);
    attrs.retain(|attr| {
        if !attr.path().is_ident("inject") {
            return true;
        }
        result = match &attr.meta {
            syn::Meta::Path(_) => Ok(Some(false)),
            syn::Meta::List(list) if list.tokens.to_string() == "default" => Ok(Some(true)),
            other => Err(syn::Error::new_spanned(
                other,
                "write `#[inject]` (resolve from the container) or `#[inject(default)]` (use `Default::default()`)",
            )),
        };
        false
    });
    result
}

/// Removes `#[use_guards(A, B)]` from `attrs` and returns the guard types, in order.
pub(crate) fn take_guards(attrs: &mut Vec<Attribute>) -> syn::Result<Vec<syn::Type>> {
    let mut guards = Vec::new();
    let mut error: Option<syn::Error> = None;
    attrs.retain(|attr| {
        if !attr.path().is_ident("use_guards") {
            return true;
        }
        let parsed = attr.parse_args_with(
            syn::punctuated::Punctuated::<syn::Type, syn::Token![,]>::parse_terminated,
        );
        match parsed {
            Ok(list) if !list.is_empty() => guards.extend(list),
            _ => {
                let e = syn::Error::new_spanned(
                    attr,
                    "write the guard types: `#[use_guards(AuthGuard, ..)]`",
                );
                match &mut error {
                    Some(all) => all.combine(e),
                    None => error = Some(e),
                }
            }
        }
        false
    });
    match error {
        Some(e) => Err(e),
        None => Ok(guards),
    }
}

/// One `#[rate_limit(..)]`: a message limit (`messages = N`) or a connection limit
/// (`connections = N` and/or `concurrent = N`).
pub(crate) enum RateLimit {
    Messages {
        count: u32,
        per_nanos: u64,
        burst: Option<u32>,
        drop: bool,
        span: Span,
    },
    Connections {
        rate: Option<(u32, u64, Option<u32>)>,
        concurrent: Option<u32>,
    },
}

const RATE_LIMIT_USAGE: &str = "write `#[rate_limit(messages = 20, per = \"1s\", burst = 40, on_excess = \"close\" | \"drop\")]` or `#[rate_limit(connections = 10, per = \"1m\", burst = 5, concurrent = 3)]`";

/// `"1s"`, `"500ms"`, `"2m"`, `"1h"` in nanoseconds.
fn parse_period(lit: &LitStr) -> syn::Result<u64> {
    let text = lit.value();
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (num, unit) = text.split_at(split);
    let n: u64 = num.parse().map_err(|_| {
        syn::Error::new_spanned(
            lit,
            "a period is a number and a unit: \"500ms\", \"1s\", \"1m\", \"1h\"",
        )
    })?;
    let scale: u64 = match unit.trim() {
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        _ => {
            return Err(syn::Error::new_spanned(
                lit,
                "the period's unit is one of ms, s, m, h: \"500ms\", \"1s\", \"1m\", \"1h\"",
            ));
        }
    };
    match n.checked_mul(scale) {
        Some(0) | None => Err(syn::Error::new_spanned(lit, "the period must be positive")),
        Some(ns) => Ok(ns),
    }
}

fn positive(lit: &syn::LitInt) -> syn::Result<u32> {
    match lit.base10_parse::<u32>() {
        Ok(0) | Err(_) => Err(syn::Error::new_spanned(lit, "expected a positive count")),
        Ok(n) => Ok(n),
    }
}

/// Removes every `#[rate_limit(..)]` from `attrs` and returns them, in order.
pub(crate) fn take_rate_limits(attrs: &mut Vec<Attribute>) -> syn::Result<Vec<RateLimit>> {
    let mut limits = Vec::new();
    let mut error: Option<syn::Error> = None;
    attrs.retain(|attr| {
        if !attr.path().is_ident("rate_limit") {
            return true;
        }
        match parse_rate_limit(attr) {
            Ok(limit) => limits.push(limit),
            Err(e) => match &mut error {
                Some(all) => all.combine(e),
                None => error = Some(e),
            },
        }
        false
    });
    match error {
        Some(e) => Err(e),
        None => Ok(limits),
    }
}

fn parse_rate_limit(attr: &Attribute) -> syn::Result<RateLimit> {
    let mut messages = None;
    let mut connections = None;
    let mut per = None;
    let mut burst = None;
    let mut concurrent = None;
    let mut on_excess: Option<LitStr> = None;
    attr.parse_nested_meta(|meta| {
        let key = meta
            .path
            .get_ident()
            .map(ToString::to_string)
            .unwrap_or_default();
        match key.as_str() {
            "messages" => messages = Some(positive(&meta.value()?.parse()?)?),
            "connections" => connections = Some(positive(&meta.value()?.parse()?)?),
            "burst" => burst = Some(positive(&meta.value()?.parse()?)?),
            "concurrent" => concurrent = Some(positive(&meta.value()?.parse()?)?),
            "per" => per = Some(parse_period(&meta.value()?.parse()?)?),
            "on_excess" => on_excess = Some(meta.value()?.parse()?),
            _ => return Err(meta.error(format!("unknown key: {RATE_LIMIT_USAGE}"))),
        }
        Ok(())
    })
    .map_err(|e| {
        if e.to_string().contains("unknown key") || e.to_string().contains("expected") {
            e
        } else {
            syn::Error::new_spanned(attr, format!("{e}; {RATE_LIMIT_USAGE}"))
        }
    })?;
    let err = |msg: &str| syn::Error::new_spanned(attr, format!("{msg}: {RATE_LIMIT_USAGE}"));
    match (messages, connections.or(concurrent.map(|_| 0))) {
        (Some(_), Some(_)) => Err(err(
            "a message limit and a connection limit go in two `#[rate_limit]` attributes",
        )),
        (Some(count), None) => {
            let drop = match on_excess.as_ref().map(LitStr::value).as_deref() {
                None | Some("close") => false,
                Some("drop") => true,
                Some(_) => {
                    return Err(syn::Error::new_spanned(
                        on_excess,
                        "`on_excess` is \"close\" (close with 1008, the default) or \"drop\"",
                    ));
                }
            };
            Ok(RateLimit::Messages {
                count,
                per_nanos: per.ok_or_else(|| err("missing `per`"))?,
                burst,
                drop,
                span: attr.span(),
            })
        }
        (None, Some(_)) => {
            if on_excess.is_some() {
                return Err(err("`on_excess` is for message limits"));
            }
            let rate = match connections {
                Some(count) => Some((count, per.ok_or_else(|| err("missing `per`"))?, burst)),
                None if per.is_some() || burst.is_some() => {
                    return Err(err("`per` and `burst` need `connections`"));
                }
                None => None,
            };
            Ok(RateLimit::Connections { rate, concurrent })
        }
        (None, None) => Err(err("say what to limit")),
    }
}
