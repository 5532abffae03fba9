//! Code generation. Everything generated names the facade by absolute path
//! (`::armature_realtime::__private::…`), so users depend on one crate.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Fields, ReturnType};

use crate::ast::{
    ControllerImpl, ControllerStruct, InjectableStruct, ModuleDef, RouteKind, RouteMethod, Source,
};
use crate::attr::RateLimit;
use crate::valid::{StreamWrap, stream_wrap};

fn private() -> TokenStream {
    quote!(::armature_realtime::__private)
}

/// `impl Injectable`: `Default::default()`, or field by field when some fields are
/// `#[inject]`.
pub(crate) fn injectable(def: &InjectableStruct) -> TokenStream {
    let p = private();
    let item = &def.item;
    let ident = &item.ident;
    let body = match &def.injected {
        None => quote_spanned!(ident.span()=> <Self as #p::Default>::default()),
        Some(flags) => construct_fields(&item.fields, |i| flags[i]),
    };
    quote! {
        #item
        impl #p::Injectable for #ident {
            fn create(__container: &#p::Container) -> #p::Result<Self, #p::Error> {
                #p::Ok(#body)
            }
        }
    }
}

/// `Self { a: resolved, b: Default::default() }` (or the tuple / unit form).
fn construct_fields(fields: &Fields, injected: impl Fn(usize) -> bool) -> TokenStream {
    let p = private();
    let value = |i: usize, field: &syn::Field| {
        let ty = &field.ty;
        if injected(i) {
            quote_spanned!(ty.span()=> #p::resolve::<#ty>(__container)?)
        } else {
            quote_spanned!(ty.span()=> <#ty as #p::Default>::default())
        }
    };
    match fields {
        Fields::Named(named) => {
            let inits = named.named.iter().enumerate().map(|(i, f)| {
                let name = &f.ident;
                let v = value(i, f);
                quote!(#name: #v)
            });
            quote!(Self { #(#inits),* })
        }
        Fields::Unnamed(unnamed) => {
            let inits = unnamed.unnamed.iter().enumerate().map(|(i, f)| value(i, f));
            quote!(Self ( #(#inits),* ))
        }
        Fields::Unit => quote!(Self),
    }
}

/// `impl Controller` for a controller struct.
pub(crate) fn controller_struct(def: &ControllerStruct) -> TokenStream {
    let p = private();
    let item = &def.item;
    let ident = &item.ident;
    let prefix = &def.prefix;
    let body = construct_fields(&item.fields, |i| !def.field_defaults[i]);
    let guards = if def.guards.is_empty() {
        TokenStream::new()
    } else {
        let checks = def.guards.iter().map(|guard| {
            quote_spanned! {guard.span()=>
                #p::run_guard::<#guard>(__head).await?;
            }
        });
        quote! {
            fn check_guards(
                __head: &mut #p::RequestHead,
            ) -> impl ::core::future::Future<Output = #p::Result<(), #p::Refusal>> + ::core::marker::Send {
                async move {
                    #(#checks)*
                    #p::Ok(())
                }
            }
        }
    };
    quote! {
        #item
        impl #p::Controller for #ident {
            fn prefix() -> &'static str {
                #prefix
            }
            #guards
            fn construct(__container: &#p::Container) -> #p::Result<Self, #p::Error> {
                #p::Ok(#body)
            }
        }
    }
}

/// The cleaned `impl` block, one hidden entry function per route, and `impl ControllerRoutes`.
pub(crate) fn controller_impl(def: &ControllerImpl) -> TokenStream {
    let p = private();
    let item = &def.item;
    let self_ty = def.self_ty();
    let entries = def
        .routes
        .iter()
        .map(|route| route_entry(route, &def.guards));
    let routes = def.routes.iter().map(|method| {
        let route = method;
        let path = &route.path;
        let entry = entry_name(route);
        let kind = match route.kind {
            RouteKind::WebSocket => quote!(#p::RouteKind::WebSocket),
            RouteKind::Sse => quote!(#p::RouteKind::Sse),
        };
        let limit = match &route.connection_limit {
            Some(RateLimit::Connections { rate, concurrent }) => {
                let mut limit = match rate {
                    Some((count, per, burst)) => {
                        let burst = burst.map(|b| quote!(.burst(#b)));
                        quote!(#p::ConnectionLimit::per_ip(#count, #p::Duration::from_nanos(#per)) #burst)
                    }
                    None => quote!(#p::ConnectionLimit::concurrent_per_ip(#concurrent)),
                };
                if let (Some(_), Some(max)) = (rate, concurrent) {
                    limit = quote!(#limit.concurrent(#max));
                }
                quote!(.connection_limit(#limit))
            }
            _ => TokenStream::new(),
        };
        let call = quote!(#p::Route::for_controller(#p::Method::GET, #path, #kind, __this, Self::#entry) #limit);
        match method.messages_type() {
            Some(ty) => {
                let name = method.sig.ident.to_string();
                quote_spanned!(ty.span()=> #call.with_messages(#name, <#ty as #p::DescribeMessages>::describe))
            }
            None => call,
        }
    });
    quote! {
        #item
        #[doc(hidden)]
        #[allow(non_snake_case, clippy::all)]
        impl #self_ty {
            #(#entries)*
        }
        impl #p::ControllerRoutes for #self_ty {
            fn routes(__this: &#p::Arc<Self>) -> #p::Vec<#p::Route> {
                #p::vec![#(#routes),*]
            }
        }
    }
}

/// What to emit for a controller `impl` block that failed validation: the block and an
/// empty route list, so the module using the controller still type-checks.
pub(crate) fn controller_impl_fallback(def: &ControllerImpl) -> TokenStream {
    let p = private();
    let item = &def.item;
    let self_ty = def.self_ty();
    quote! {
        #item
        impl #p::ControllerRoutes for #self_ty {
            fn routes(_: &#p::Arc<Self>) -> #p::Vec<#p::Route> {
                #p::Vec::new()
            }
        }
    }
}

fn entry_name(route: &RouteMethod) -> syn::Ident {
    format_ident!("__armature_route_{}", route.sig.ident)
}

fn route_entry(route: &RouteMethod, controller_guards: &[syn::Type]) -> TokenStream {
    let p = private();
    let entry = entry_name(route);
    let method = &route.sig.ident;
    let websocket = route.kind == RouteKind::WebSocket;
    // The Origin check (WebSocket routes) runs first, then the connection limits (429),
    // then the guards: the controller struct's, its impl block's, the method's.
    let mut guards = Vec::new();
    if websocket {
        guards.push(quote! {
            if let #p::Some(__refused) = #p::origin_refusal(&__head) {
                return __refused;
            }
        });
    }
    guards.push(quote! {
        if let #p::Err(__refusal) = #p::connection_limits(&mut __head) {
            return #p::refuse(__head, __refusal, false).await;
        }
        if let #p::Err(__refusal) = <Self as #p::Controller>::check_guards(&mut __head).await {
            return #p::refuse(__head, __refusal, #websocket).await;
        }
    });
    if let Some(RateLimit::Messages {
        count,
        per_nanos,
        burst,
        drop,
        ..
    }) = &route.message_limit
    {
        let burst = burst.map(|b| quote!(.burst(#b)));
        let excess = if *drop {
            quote!(#p::OnExcess::Drop)
        } else {
            quote!(#p::OnExcess::Close)
        };
        guards.push(quote! {
            #p::set_message_rate(
                &mut __head,
                #p::MessageRate::new(#count, #p::Duration::from_nanos(#per_nanos)) #burst .on_excess(#excess),
            );
        });
    }
    for guard in controller_guards.iter().chain(&route.guards) {
        guards.push(quote_spanned! {guard.span()=>
            if let #p::Err(__refusal) = #p::run_guard::<#guard>(&mut __head).await {
                return #p::refuse(__head, __refusal, #websocket).await;
            }
        });
    }
    let mut extract = Vec::new();
    let mut call_args = Vec::new();
    let mut socket_setup = TokenStream::new();
    for (i, arg) in route.args.iter().enumerate() {
        let var = format_ident!("__arg{}", i);
        let ty = &arg.ty;
        let span = arg.ty.span();
        let source = match &arg.source {
            Source::Path(name) => {
                Some(quote_spanned!(span=> #p::path_param::<#ty>(&__head, #name)))
            }
            Source::Query(key) => {
                Some(quote_spanned!(span=> #p::query_param::<#ty>(&__head, #key)))
            }
            Source::Header(key) => {
                Some(quote_spanned!(span=> #p::header_param::<#ty>(&__head, #key)))
            }
            Source::Extract => Some(quote_spanned!(span=> #p::extract::<#ty>(&__head))),
            Source::Socket => {
                socket_setup = quote! {
                    let #var = match __pending.accept().await {
                        #p::Ok(socket) => <#ty as #p::FromSocket>::from_socket(socket),
                        #p::Err(err) => return #p::Err(err),
                    };
                };
                None
            }
            Source::Pending => {
                socket_setup = quote!(let #var = __pending;);
                None
            }
            Source::Head => {
                call_args.push(quote!(&__head));
                continue;
            }
            Source::Unknown | Source::Reported => None,
        };
        if let Some(source) = source {
            extract.push(quote! {
                let #var: #ty = match #source {
                    #p::Ok(value) => value,
                    #p::Err(err) => return #p::error_response(&err),
                };
            });
        }
        call_args.push(quote!(#var));
    }
    let body = match route.kind {
        RouteKind::WebSocket => quote! {
            #p::websocket(__head, move |__pending, __head| async move {
                #socket_setup
                #p::HandlerOutcome::into_outcome(__this.#method(#(#call_args),*).await)
            })
            .await
        },
        RouteKind::Sse => {
            let ret_span = match &route.sig.output {
                ReturnType::Type(_, ty) => ty.span(),
                ReturnType::Default => route.sig.ident.span(),
            };
            let wrap = match &route.sig.output {
                ReturnType::Type(_, ty) => match stream_wrap(ty) {
                    StreamWrap::Stream => quote_spanned!(ret_span=> #p::EventStream::new(__out)),
                    StreamWrap::ResultStream => {
                        quote_spanned!(ret_span=> #p::Result::map(__out, #p::EventStream::new))
                    }
                    StreamWrap::None => quote!(__out),
                },
                ReturnType::Default => quote!(__out),
            };
            let respond = quote_spanned!(ret_span=> #p::sse_response(__signal, __out));
            quote! {
                let __signal = #p::shutdown_signal(&__head);
                let __out = __this.#method(#(#call_args),*).await;
                let __out = #wrap;
                let __response = #respond;
                #p::hold_permits(&mut __head, __response)
            }
        }
    };
    quote! {
        fn #entry(
            __this: #p::Arc<Self>,
            __head: #p::RequestHead,
        ) -> #p::BoxFuture<#p::Response<#p::Body>> {
            #p::Box::pin(async move {
                #[allow(unused_mut)]
                let mut __head = __head;
                #(#guards)*
                #(#extract)*
                #body
            })
        }
    }
}

/// `impl Module`.
pub(crate) fn module(def: &ModuleDef, item: &syn::ItemStruct) -> TokenStream {
    let p = private();
    let ident = &def.ident;
    let calls = def.entries().map(|(list, path)| match list {
        "providers" => quote_spanned!(path.span()=> __builder.provider::<#path>();),
        // A controller struct without a `#[controller] impl` block serves no route.
        "controllers" => quote_spanned! {path.span()=>
            {
                #[allow(unused_imports)]
                use #p::{WithRoutes as _, WithoutRoutes as _};
                let __routes = (&#p::RoutesOf::<#path>::new()).routes_fn();
                __builder.controller_with_routes::<#path>(__routes);
            }
        },
        _ => quote_spanned!(path.span()=> __builder.import::<#path>();),
    });
    quote! {
        #item
        impl #p::Module for #ident {
            fn configure(__builder: &mut #p::ModuleBuilder) {
                #(#calls)*
            }
        }
    }
}
