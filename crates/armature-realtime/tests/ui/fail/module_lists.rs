use armature_realtime::prelude::*;

#[injectable]
#[derive(Clone, Default)]
struct S;

#[module(providers: [S], services: [S])]
struct A;

#[module(providers: [S, S])]
struct B;

#[module(providers: S)]
struct D;

fn main() {}
