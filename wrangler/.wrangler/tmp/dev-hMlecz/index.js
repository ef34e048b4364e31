var __defProp = Object.defineProperty;
var __name = (target, value) => __defProp(target, "name", { value, configurable: true });

// wrangler-config:config:middleware/patch-console-prefix
var prefix = "[clientdocs-api-ded-01]";

// ../node_modules/wrangler/templates/middleware/middleware-patch-console-prefix.ts
["log", "debug", "info"].forEach((method) => {
  globalThis.console[method] = new Proxy(globalThis.console[method], {
    apply(target, thisArg, argumentsList) {
      return target.apply(thisArg, [prefix, ...argumentsList]);
    }
  });
});

// ../producers/api/build/index.js
import { WorkerEntrypoint as le } from "cloudflare:workers";
import Q from "./361e957e0379e693bc356f9e7bc5cc9c7b01b77e-index_bg.wasm";
var H = globalThis.__worker_init_state = { criticalError: false, instanceId: 0 };
var v = class {
  static {
    __name(this, "v");
  }
  __destroy_into_raw() {
    let e = this.__wbg_ptr;
    return this.__wbg_ptr = 0, ie.unregister(this), e;
  }
  free() {
    let e = this.__destroy_into_raw();
    c();
    try {
      i.__wbg_containerstartupoptions_free(e, 0);
    } catch (t) {
      s(t);
    }
  }
  get enableInternet() {
    if (this.__wbg_inst !== void 0 && this.__wbg_inst !== a) throw new Error("Invalid stale object from previous Wasm instance");
    let e;
    c();
    try {
      e = i.__wbg_get_containerstartupoptions_enableInternet(this.__wbg_ptr);
    } catch (t) {
      s(t);
    }
    return e === 16777215 ? void 0 : e !== 0;
  }
  get entrypoint() {
    if (this.__wbg_inst !== void 0 && this.__wbg_inst !== a) throw new Error("Invalid stale object from previous Wasm instance");
    let e;
    c();
    try {
      e = i.__wbg_get_containerstartupoptions_entrypoint(this.__wbg_ptr);
    } catch (n) {
      s(n);
    }
    var t = fe(e[0], e[1]);
    return i.__wbindgen_free(e[0], e[1] * 4, 4), t;
  }
  get env() {
    if (this.__wbg_inst !== void 0 && this.__wbg_inst !== a) throw new Error("Invalid stale object from previous Wasm instance");
    let e;
    c();
    try {
      e = i.__wbg_get_containerstartupoptions_env(this.__wbg_ptr);
    } catch (t) {
      s(t);
    }
    return e;
  }
  set enableInternet(e) {
    if (this.__wbg_inst !== void 0 && this.__wbg_inst !== a) throw new Error("Invalid stale object from previous Wasm instance");
    c();
    try {
      i.__wbg_set_containerstartupoptions_enableInternet(this.__wbg_ptr, b(e) ? 16777215 : e ? 1 : 0);
    } catch (t) {
      s(t);
    }
  }
  set entrypoint(e) {
    if (this.__wbg_inst !== void 0 && this.__wbg_inst !== a) throw new Error("Invalid stale object from previous Wasm instance");
    let t = be(e, i.__wbindgen_malloc), n = g;
    c();
    try {
      i.__wbg_set_containerstartupoptions_entrypoint(this.__wbg_ptr, t, n);
    } catch (_) {
      s(_);
    }
  }
  set env(e) {
    if (this.__wbg_inst !== void 0 && this.__wbg_inst !== a) throw new Error("Invalid stale object from previous Wasm instance");
    c();
    try {
      i.__wbg_set_containerstartupoptions_env(this.__wbg_ptr, e);
    } catch (t) {
      s(t);
    }
  }
};
Symbol.dispose && (v.prototype[Symbol.dispose] = v.prototype.free);
var A = class {
  static {
    __name(this, "A");
  }
  __destroy_into_raw() {
    let e = this.__wbg_ptr;
    return this.__wbg_ptr = 0, oe.unregister(this), e;
  }
  free() {
    let e = this.__destroy_into_raw();
    c();
    try {
      i.__wbg_intounderlyingbytesource_free(e, 0);
    } catch (t) {
      s(t);
    }
  }
  get autoAllocateChunkSize() {
    if (this.__wbg_inst !== void 0 && this.__wbg_inst !== a) throw new Error("Invalid stale object from previous Wasm instance");
    let e;
    c();
    try {
      e = i.intounderlyingbytesource_autoAllocateChunkSize(this.__wbg_ptr);
    } catch (t) {
      s(t);
    }
    return e >>> 0;
  }
  cancel() {
    if (this.__wbg_inst !== void 0 && this.__wbg_inst !== a) throw new Error("Invalid stale object from previous Wasm instance");
    let e = this.__destroy_into_raw();
    c();
    try {
      i.intounderlyingbytesource_cancel(e);
    } catch (t) {
      s(t);
    }
  }
  pull(e) {
    if (this.__wbg_inst !== void 0 && this.__wbg_inst !== a) throw new Error("Invalid stale object from previous Wasm instance");
    let t;
    c();
    try {
      t = i.intounderlyingbytesource_pull(this.__wbg_ptr, e);
    } catch (n) {
      s(n);
    }
    return t;
  }
  start(e) {
    if (this.__wbg_inst !== void 0 && this.__wbg_inst !== a) throw new Error("Invalid stale object from previous Wasm instance");
    c();
    try {
      i.intounderlyingbytesource_start(this.__wbg_ptr, e);
    } catch (t) {
      s(t);
    }
  }
  get type() {
    if (this.__wbg_inst !== void 0 && this.__wbg_inst !== a) throw new Error("Invalid stale object from previous Wasm instance");
    let e;
    c();
    try {
      e = i.intounderlyingbytesource_type(this.__wbg_ptr);
    } catch (t) {
      s(t);
    }
    return _e[e];
  }
};
Symbol.dispose && (A.prototype[Symbol.dispose] = A.prototype.free);
var T = class {
  static {
    __name(this, "T");
  }
  __destroy_into_raw() {
    let e = this.__wbg_ptr;
    return this.__wbg_ptr = 0, se.unregister(this), e;
  }
  free() {
    let e = this.__destroy_into_raw();
    c();
    try {
      i.__wbg_intounderlyingsink_free(e, 0);
    } catch (t) {
      s(t);
    }
  }
  abort(e) {
    if (this.__wbg_inst !== void 0 && this.__wbg_inst !== a) throw new Error("Invalid stale object from previous Wasm instance");
    let t = this.__destroy_into_raw(), n;
    c();
    try {
      n = i.intounderlyingsink_abort(t, e);
    } catch (_) {
      s(_);
    }
    return n;
  }
  close() {
    if (this.__wbg_inst !== void 0 && this.__wbg_inst !== a) throw new Error("Invalid stale object from previous Wasm instance");
    let e = this.__destroy_into_raw(), t;
    c();
    try {
      t = i.intounderlyingsink_close(e);
    } catch (n) {
      s(n);
    }
    return t;
  }
  write(e) {
    if (this.__wbg_inst !== void 0 && this.__wbg_inst !== a) throw new Error("Invalid stale object from previous Wasm instance");
    let t;
    c();
    try {
      t = i.intounderlyingsink_write(this.__wbg_ptr, e);
    } catch (n) {
      s(n);
    }
    return t;
  }
};
Symbol.dispose && (T.prototype[Symbol.dispose] = T.prototype.free);
var W = class r {
  static {
    __name(this, "r");
  }
  static __wrap(e) {
    let t = Object.create(r.prototype);
    return t.__wbg_ptr = e, Object.defineProperty(t, "__wbg_inst", { value: a, writable: true }), G.register(t, { ptr: e, instance: a }, t), t;
  }
  __destroy_into_raw() {
    let e = this.__wbg_ptr;
    return this.__wbg_ptr = 0, G.unregister(this), e;
  }
  free() {
    let e = this.__destroy_into_raw();
    c();
    try {
      i.__wbg_intounderlyingsource_free(e, 0);
    } catch (t) {
      s(t);
    }
  }
  cancel() {
    if (this.__wbg_inst !== void 0 && this.__wbg_inst !== a) throw new Error("Invalid stale object from previous Wasm instance");
    let e = this.__destroy_into_raw();
    c();
    try {
      i.intounderlyingsource_cancel(e);
    } catch (t) {
      s(t);
    }
  }
  pull(e) {
    if (this.__wbg_inst !== void 0 && this.__wbg_inst !== a) throw new Error("Invalid stale object from previous Wasm instance");
    let t;
    c();
    try {
      t = i.intounderlyingsource_pull(this.__wbg_ptr, e);
    } catch (n) {
      s(n);
    }
    return t;
  }
};
Symbol.dispose && (W.prototype[Symbol.dispose] = W.prototype.free);
var I = class {
  static {
    __name(this, "I");
  }
  __destroy_into_raw() {
    let e = this.__wbg_ptr;
    return this.__wbg_ptr = 0, ce.unregister(this), e;
  }
  free() {
    let e = this.__destroy_into_raw();
    c();
    try {
      i.__wbg_minifyconfig_free(e, 0);
    } catch (t) {
      s(t);
    }
  }
  get css() {
    if (this.__wbg_inst !== void 0 && this.__wbg_inst !== a) throw new Error("Invalid stale object from previous Wasm instance");
    let e;
    c();
    try {
      e = i.__wbg_get_minifyconfig_css(this.__wbg_ptr);
    } catch (t) {
      s(t);
    }
    return e !== 0;
  }
  get html() {
    if (this.__wbg_inst !== void 0 && this.__wbg_inst !== a) throw new Error("Invalid stale object from previous Wasm instance");
    let e;
    c();
    try {
      e = i.__wbg_get_minifyconfig_html(this.__wbg_ptr);
    } catch (t) {
      s(t);
    }
    return e !== 0;
  }
  get js() {
    if (this.__wbg_inst !== void 0 && this.__wbg_inst !== a) throw new Error("Invalid stale object from previous Wasm instance");
    let e;
    c();
    try {
      e = i.__wbg_get_minifyconfig_js(this.__wbg_ptr);
    } catch (t) {
      s(t);
    }
    return e !== 0;
  }
  set css(e) {
    if (this.__wbg_inst !== void 0 && this.__wbg_inst !== a) throw new Error("Invalid stale object from previous Wasm instance");
    c();
    try {
      i.__wbg_set_minifyconfig_css(this.__wbg_ptr, e);
    } catch (t) {
      s(t);
    }
  }
  set html(e) {
    if (this.__wbg_inst !== void 0 && this.__wbg_inst !== a) throw new Error("Invalid stale object from previous Wasm instance");
    c();
    try {
      i.__wbg_set_minifyconfig_html(this.__wbg_ptr, e);
    } catch (t) {
      s(t);
    }
  }
  set js(e) {
    if (this.__wbg_inst !== void 0 && this.__wbg_inst !== a) throw new Error("Invalid stale object from previous Wasm instance");
    c();
    try {
      i.__wbg_set_minifyconfig_js(this.__wbg_ptr, e);
    } catch (t) {
      s(t);
    }
  }
};
Symbol.dispose && (I.prototype[Symbol.dispose] = I.prototype.free);
var x = class {
  static {
    __name(this, "x");
  }
  __destroy_into_raw() {
    let e = this.__wbg_ptr;
    return this.__wbg_ptr = 0, ae.unregister(this), e;
  }
  free() {
    let e = this.__destroy_into_raw();
    c();
    try {
      i.__wbg_r2range_free(e, 0);
    } catch (t) {
      s(t);
    }
  }
  get length() {
    if (this.__wbg_inst !== void 0 && this.__wbg_inst !== a) throw new Error("Invalid stale object from previous Wasm instance");
    let e;
    c();
    try {
      e = i.__wbg_get_r2range_length(this.__wbg_ptr);
    } catch (t) {
      s(t);
    }
    return e[0] === 0 ? void 0 : e[1];
  }
  get offset() {
    if (this.__wbg_inst !== void 0 && this.__wbg_inst !== a) throw new Error("Invalid stale object from previous Wasm instance");
    let e;
    c();
    try {
      e = i.__wbg_get_r2range_offset(this.__wbg_ptr);
    } catch (t) {
      s(t);
    }
    return e[0] === 0 ? void 0 : e[1];
  }
  get suffix() {
    if (this.__wbg_inst !== void 0 && this.__wbg_inst !== a) throw new Error("Invalid stale object from previous Wasm instance");
    let e;
    c();
    try {
      e = i.__wbg_get_r2range_suffix(this.__wbg_ptr);
    } catch (t) {
      s(t);
    }
    return e[0] === 0 ? void 0 : e[1];
  }
  set length(e) {
    if (this.__wbg_inst !== void 0 && this.__wbg_inst !== a) throw new Error("Invalid stale object from previous Wasm instance");
    c();
    try {
      i.__wbg_set_r2range_length(this.__wbg_ptr, !b(e), b(e) ? 0 : e);
    } catch (t) {
      s(t);
    }
  }
  set offset(e) {
    if (this.__wbg_inst !== void 0 && this.__wbg_inst !== a) throw new Error("Invalid stale object from previous Wasm instance");
    c();
    try {
      i.__wbg_set_r2range_offset(this.__wbg_ptr, !b(e), b(e) ? 0 : e);
    } catch (t) {
      s(t);
    }
  }
  set suffix(e) {
    if (this.__wbg_inst !== void 0 && this.__wbg_inst !== a) throw new Error("Invalid stale object from previous Wasm instance");
    c();
    try {
      i.__wbg_set_r2range_suffix(this.__wbg_ptr, !b(e), b(e) ? 0 : e);
    } catch (t) {
      s(t);
    }
  }
};
Symbol.dispose && (x.prototype[Symbol.dispose] = x.prototype.free);
function O() {
  a++, m = null, R = null, F = null, typeof numBytesDecoded < "u" && (numBytesDecoded = 0), typeof g < "u" && (g = 0), N = false, M = false, q = new WebAssembly.Instance(Q, Z()), i = q.exports, i.__wbindgen_start();
}
__name(O, "O");
function X() {
  let r2;
  c();
  try {
    r2 = i.__worker_init_state();
  } catch (e) {
    s(e);
  }
  return r2;
}
__name(X, "X");
function Y(r2, e, t) {
  let n;
  c();
  try {
    n = i.fetch(r2, e, t);
  } catch (_) {
    s(_);
  }
  return n;
}
__name(Y, "Y");
function Z() {
  return { __proto__: null, "./index_bg.js": { __proto__: null, __wbg_Error_30c8987f7c2ed4e2: /* @__PURE__ */ __name(function(e, t) {
    return Error(l(e, t));
  }, "__wbg_Error_30c8987f7c2ed4e2"), __wbg_Number_14af1003b8dd5ead: /* @__PURE__ */ __name(function(e) {
    return Number(e);
  }, "__wbg_Number_14af1003b8dd5ead"), __wbg_String_8564e559799eccda: /* @__PURE__ */ __name(function(e, t) {
    let n = String(t), _ = h(n, i.__wbindgen_malloc, i.__wbindgen_realloc), o = g;
    u().setInt32(e + 4, o, true), u().setInt32(e + 0, _, true);
  }, "__wbg_String_8564e559799eccda"), __wbg___wbindgen_bigint_get_as_i64_a2383202b9353e4c: /* @__PURE__ */ __name(function(e, t) {
    let n = t, _ = typeof n == "bigint" ? n : void 0;
    u().setBigInt64(e + 8, b(_) ? BigInt(0) : _, true), u().setInt32(e + 0, !b(_), true);
  }, "__wbg___wbindgen_bigint_get_as_i64_a2383202b9353e4c"), __wbg___wbindgen_boolean_get_5b446f51afd21013: /* @__PURE__ */ __name(function(e) {
    let t = e, n = typeof t == "boolean" ? t : void 0;
    return b(n) ? 16777215 : n ? 1 : 0;
  }, "__wbg___wbindgen_boolean_get_5b446f51afd21013"), __wbg___wbindgen_debug_string_4687d8d8c2017d52: /* @__PURE__ */ __name(function(e, t) {
    let n = U(t), _ = h(n, i.__wbindgen_malloc, i.__wbindgen_realloc), o = g;
    u().setInt32(e + 4, o, true), u().setInt32(e + 0, _, true);
  }, "__wbg___wbindgen_debug_string_4687d8d8c2017d52"), __wbg___wbindgen_in_92f62ee1427d9e49: /* @__PURE__ */ __name(function(e, t) {
    return e in t;
  }, "__wbg___wbindgen_in_92f62ee1427d9e49"), __wbg___wbindgen_is_bigint_b123553bed3bb382: /* @__PURE__ */ __name(function(e) {
    return typeof e == "bigint";
  }, "__wbg___wbindgen_is_bigint_b123553bed3bb382"), __wbg___wbindgen_is_function_1f9d30630b8b1d3d: /* @__PURE__ */ __name(function(e) {
    return typeof e == "function";
  }, "__wbg___wbindgen_is_function_1f9d30630b8b1d3d"), __wbg___wbindgen_is_null_e343b7d08827ba72: /* @__PURE__ */ __name(function(e) {
    return e === null;
  }, "__wbg___wbindgen_is_null_e343b7d08827ba72"), __wbg___wbindgen_is_null_or_undefined_f9435d56bdcc06df: /* @__PURE__ */ __name(function(e) {
    return e == null;
  }, "__wbg___wbindgen_is_null_or_undefined_f9435d56bdcc06df"), __wbg___wbindgen_is_object_3c45d4f2dde4e749: /* @__PURE__ */ __name(function(e) {
    let t = e;
    return typeof t == "object" && t !== null;
  }, "__wbg___wbindgen_is_object_3c45d4f2dde4e749"), __wbg___wbindgen_is_string_90b56bc79aad6f6c: /* @__PURE__ */ __name(function(e) {
    return typeof e == "string";
  }, "__wbg___wbindgen_is_string_90b56bc79aad6f6c"), __wbg___wbindgen_is_undefined_8865fb403f8fe9d8: /* @__PURE__ */ __name(function(e) {
    return e === void 0;
  }, "__wbg___wbindgen_is_undefined_8865fb403f8fe9d8"), __wbg___wbindgen_jsval_eq_02babf21faa37971: /* @__PURE__ */ __name(function(e, t) {
    return e === t;
  }, "__wbg___wbindgen_jsval_eq_02babf21faa37971"), __wbg___wbindgen_jsval_loose_eq_677f21e468d6b461: /* @__PURE__ */ __name(function(e, t) {
    return e == t;
  }, "__wbg___wbindgen_jsval_loose_eq_677f21e468d6b461"), __wbg___wbindgen_number_get_2e0e7dee9f701a71: /* @__PURE__ */ __name(function(e, t) {
    let n = t, _ = typeof n == "number" ? n : void 0;
    u().setFloat64(e + 8, b(_) ? 0 : _, true), u().setInt32(e + 0, !b(_), true);
  }, "__wbg___wbindgen_number_get_2e0e7dee9f701a71"), __wbg___wbindgen_reinit_3f79fdb34dee3ea9: /* @__PURE__ */ __name(function() {
    M = true;
  }, "__wbg___wbindgen_reinit_3f79fdb34dee3ea9"), __wbg___wbindgen_string_get_0380ccaa2f57f0d9: /* @__PURE__ */ __name(function(e, t) {
    let n = t, _ = typeof n == "string" ? n : void 0;
    var o = b(_) ? 0 : h(_, i.__wbindgen_malloc, i.__wbindgen_realloc), f = g;
    u().setInt32(e + 4, f, true), u().setInt32(e + 0, o, true);
  }, "__wbg___wbindgen_string_get_0380ccaa2f57f0d9"), __wbg___wbindgen_throw_41e9ee4f547fc59a: /* @__PURE__ */ __name(function(e, t) {
    throw new WebAssembly.Exception(L, [new Error(l(e, t))]);
  }, "__wbg___wbindgen_throw_41e9ee4f547fc59a"), __wbg__wbg_cb_unref_dcc1a90847f04c41: /* @__PURE__ */ __name(function(e) {
    e._wbg_cb_unref();
  }, "__wbg__wbg_cb_unref_dcc1a90847f04c41"), __wbg_all_2228d6712e7ddb97: /* @__PURE__ */ __name(function(e) {
    return e.all();
  }, "__wbg_all_2228d6712e7ddb97"), __wbg_arrayBuffer_7b8b2e9be0285525: /* @__PURE__ */ __name(function(e) {
    return e.arrayBuffer();
  }, "__wbg_arrayBuffer_7b8b2e9be0285525"), __wbg_arrayBuffer_aa7cad37be6e6b29: /* @__PURE__ */ __name(function(e) {
    return e.arrayBuffer();
  }, "__wbg_arrayBuffer_aa7cad37be6e6b29"), __wbg_batch_7e8e3902cf32b76b: /* @__PURE__ */ __name(function(e, t) {
    return e.batch(t);
  }, "__wbg_batch_7e8e3902cf32b76b"), __wbg_bind_1f842289d2018ed8: /* @__PURE__ */ __name(function(e, t) {
    return e.bind(...t);
  }, "__wbg_bind_1f842289d2018ed8"), __wbg_buffer_56ec2905a66f58b9: /* @__PURE__ */ __name(function(e) {
    return e.buffer;
  }, "__wbg_buffer_56ec2905a66f58b9"), __wbg_byobRequest_54f7ce41d584549a: /* @__PURE__ */ __name(function(e) {
    let t = e.byobRequest;
    return b(t) ? 0 : p(t);
  }, "__wbg_byobRequest_54f7ce41d584549a"), __wbg_byteLength_9f985b8373f1f3fe: /* @__PURE__ */ __name(function(e) {
    return e.byteLength;
  }, "__wbg_byteLength_9f985b8373f1f3fe"), __wbg_byteOffset_0bd5a6a03553639c: /* @__PURE__ */ __name(function(e) {
    return e.byteOffset;
  }, "__wbg_byteOffset_0bd5a6a03553639c"), __wbg_cacheControl_6ea9be880720803d: /* @__PURE__ */ __name(function(e, t) {
    let n = t.cacheControl;
    var _ = b(n) ? 0 : h(n, i.__wbindgen_malloc, i.__wbindgen_realloc), o = g;
    u().setInt32(e + 4, o, true), u().setInt32(e + 0, _, true);
  }, "__wbg_cacheControl_6ea9be880720803d"), __wbg_cacheExpiry_ee9de6a8c623e1a8: /* @__PURE__ */ __name(function(e) {
    let t = e.cacheExpiry;
    return b(t) ? 0 : p(t);
  }, "__wbg_cacheExpiry_ee9de6a8c623e1a8"), __wbg_call_1875a20c43a36133: /* @__PURE__ */ __name(function(e, t, n, _) {
    return e.call(t, n, _);
  }, "__wbg_call_1875a20c43a36133"), __wbg_call_187d372bd5fdd4aa: /* @__PURE__ */ __name(function(e, t, n) {
    return e.call(t, n);
  }, "__wbg_call_187d372bd5fdd4aa"), __wbg_call_6137034ef55c9d0f: /* @__PURE__ */ __name(function(e, t) {
    return e.call(t);
  }, "__wbg_call_6137034ef55c9d0f"), __wbg_call_939a2607c4484b0b: /* @__PURE__ */ __name(function(e, t, n, _, o) {
    return e.call(t, n, _, o);
  }, "__wbg_call_939a2607c4484b0b"), __wbg_cause_19276d032a32d4bd: /* @__PURE__ */ __name(function(e) {
    return e.cause;
  }, "__wbg_cause_19276d032a32d4bd"), __wbg_cf_b47fe5ff6d015a0d: /* @__PURE__ */ __name(function(e) {
    let t = e.cf;
    return b(t) ? 0 : p(t);
  }, "__wbg_cf_b47fe5ff6d015a0d"), __wbg_close_185286988f30f252: /* @__PURE__ */ __name(function(e) {
    e.close();
  }, "__wbg_close_185286988f30f252"), __wbg_close_748f26698dabe269: /* @__PURE__ */ __name(function(e) {
    e.close();
  }, "__wbg_close_748f26698dabe269"), __wbg_constructor_076176ce0f386e16: /* @__PURE__ */ __name(function(e) {
    return e.constructor;
  }, "__wbg_constructor_076176ce0f386e16"), __wbg_contentDisposition_07447c7ffe1f25b9: /* @__PURE__ */ __name(function(e, t) {
    let n = t.contentDisposition;
    var _ = b(n) ? 0 : h(n, i.__wbindgen_malloc, i.__wbindgen_realloc), o = g;
    u().setInt32(e + 4, o, true), u().setInt32(e + 0, _, true);
  }, "__wbg_contentDisposition_07447c7ffe1f25b9"), __wbg_contentEncoding_0a83e35746c3ada7: /* @__PURE__ */ __name(function(e, t) {
    let n = t.contentEncoding;
    var _ = b(n) ? 0 : h(n, i.__wbindgen_malloc, i.__wbindgen_realloc), o = g;
    u().setInt32(e + 4, o, true), u().setInt32(e + 0, _, true);
  }, "__wbg_contentEncoding_0a83e35746c3ada7"), __wbg_contentLanguage_ac8796c815bdf6a7: /* @__PURE__ */ __name(function(e, t) {
    let n = t.contentLanguage;
    var _ = b(n) ? 0 : h(n, i.__wbindgen_malloc, i.__wbindgen_realloc), o = g;
    u().setInt32(e + 4, o, true), u().setInt32(e + 0, _, true);
  }, "__wbg_contentLanguage_ac8796c815bdf6a7"), __wbg_contentType_e59097c6037d86e1: /* @__PURE__ */ __name(function(e, t) {
    let n = t.contentType;
    var _ = b(n) ? 0 : h(n, i.__wbindgen_malloc, i.__wbindgen_realloc), o = g;
    u().setInt32(e + 4, o, true), u().setInt32(e + 0, _, true);
  }, "__wbg_contentType_e59097c6037d86e1"), __wbg_country_e8b34ad6526ea4f9: /* @__PURE__ */ __name(function(e, t) {
    let n = t.country;
    var _ = b(n) ? 0 : h(n, i.__wbindgen_malloc, i.__wbindgen_realloc), o = g;
    u().setInt32(e + 4, o, true), u().setInt32(e + 0, _, true);
  }, "__wbg_country_e8b34ad6526ea4f9"), __wbg_crypto_38df2bab126b63dc: /* @__PURE__ */ __name(function(e) {
    return e.crypto;
  }, "__wbg_crypto_38df2bab126b63dc"), __wbg_delete_4a8ee012c43b86c0: /* @__PURE__ */ __name(function(e, t, n) {
    let _, o;
    try {
      return _ = t, o = n, e.delete(l(t, n));
    } finally {
      c();
      try {
        i.__wbindgen_free(_, o, 1);
      } catch (f) {
        s(f);
      }
    }
  }, "__wbg_delete_4a8ee012c43b86c0"), __wbg_done_b41a1d26cdb37fb6: /* @__PURE__ */ __name(function(e) {
    return e.done;
  }, "__wbg_done_b41a1d26cdb37fb6"), __wbg_enqueue_4a01c128f9a0de16: /* @__PURE__ */ __name(function(e, t) {
    e.enqueue(t);
  }, "__wbg_enqueue_4a01c128f9a0de16"), __wbg_entries_b55ec7e0dc443355: /* @__PURE__ */ __name(function(e) {
    return e.entries();
  }, "__wbg_entries_b55ec7e0dc443355"), __wbg_entries_fb6397112b1de25f: /* @__PURE__ */ __name(function(e) {
    return Object.entries(e);
  }, "__wbg_entries_fb6397112b1de25f"), __wbg_error_00c89883480d27e0: /* @__PURE__ */ __name(function(e, t) {
    let n = t.error;
    var _ = b(n) ? 0 : h(n, i.__wbindgen_malloc, i.__wbindgen_realloc), o = g;
    u().setInt32(e + 4, o, true), u().setInt32(e + 0, _, true);
  }, "__wbg_error_00c89883480d27e0"), __wbg_error_a30e98d44009f1bb: /* @__PURE__ */ __name(function(e, t) {
    console.error(e, t);
  }, "__wbg_error_a30e98d44009f1bb"), __wbg_error_c9cf3fc2064683a9: /* @__PURE__ */ __name(function(e) {
    console.error(e);
  }, "__wbg_error_c9cf3fc2064683a9"), __wbg_getBookmark_45a166c663da511b: /* @__PURE__ */ __name(function(e, t) {
    let n = t.getBookmark();
    var _ = b(n) ? 0 : h(n, i.__wbindgen_malloc, i.__wbindgen_realloc), o = g;
    u().setInt32(e + 4, o, true), u().setInt32(e + 0, _, true);
  }, "__wbg_getBookmark_45a166c663da511b"), __wbg_getRandomValues_a608c4436c19407a: /* @__PURE__ */ __name(function(e, t) {
    globalThis.crypto.getRandomValues(k(e, t));
  }, "__wbg_getRandomValues_a608c4436c19407a"), __wbg_getRandomValues_c44a50d8cfdaebeb: /* @__PURE__ */ __name(function(e, t) {
    e.getRandomValues(t);
  }, "__wbg_getRandomValues_c44a50d8cfdaebeb"), __wbg_getTime_f5a55efff2585d5d: /* @__PURE__ */ __name(function(e) {
    return e.getTime();
  }, "__wbg_getTime_f5a55efff2585d5d"), __wbg_get_31af05bd4842a84f: /* @__PURE__ */ __name(function(e, t) {
    return Reflect.get(e, t);
  }, "__wbg_get_31af05bd4842a84f"), __wbg_get_658f6698067d9515: /* @__PURE__ */ __name(function(e, t) {
    return Reflect.get(e, t);
  }, "__wbg_get_658f6698067d9515"), __wbg_get_6c896e0571ddae51: /* @__PURE__ */ __name(function(e, t) {
    return e[t >>> 0];
  }, "__wbg_get_6c896e0571ddae51"), __wbg_get_834ef2d65b3b5c73: /* @__PURE__ */ __name(function(e, t, n, _) {
    let o, f;
    try {
      return o = t, f = n, e.get(l(t, n), _);
    } finally {
      c();
      try {
        i.__wbindgen_free(o, f, 1);
      } catch (d) {
        s(d);
      }
    }
  }, "__wbg_get_834ef2d65b3b5c73"), __wbg_get_88983e33467eae60: /* @__PURE__ */ __name(function(e, t) {
    let n = Reflect.get(e, t);
    return b(n) ? 0 : p(n);
  }, "__wbg_get_88983e33467eae60"), __wbg_get_unchecked_288889d017702237: /* @__PURE__ */ __name(function(e, t) {
    return e[t >>> 0];
  }, "__wbg_get_unchecked_288889d017702237"), __wbg_get_with_ref_key_6412cf3094599694: /* @__PURE__ */ __name(function(e, t) {
    return e[t];
  }, "__wbg_get_with_ref_key_6412cf3094599694"), __wbg_headers_6930a8bd09b630de: /* @__PURE__ */ __name(function(e) {
    return e.headers;
  }, "__wbg_headers_6930a8bd09b630de"), __wbg_httpMetadata_529f7924a4f73fdd: /* @__PURE__ */ __name(function(e) {
    return e.httpMetadata;
  }, "__wbg_httpMetadata_529f7924a4f73fdd"), __wbg_instanceId_9b67ff33ae8bef8a: /* @__PURE__ */ __name(function(e) {
    return e.instanceId;
  }, "__wbg_instanceId_9b67ff33ae8bef8a"), __wbg_instanceof_ArrayBuffer_a99f175873e5d9b8: /* @__PURE__ */ __name(function(e) {
    let t;
    try {
      t = e instanceof ArrayBuffer;
    } catch {
      t = false;
    }
    return t;
  }, "__wbg_instanceof_ArrayBuffer_a99f175873e5d9b8"), __wbg_instanceof_Error_80a725f81f2e102d: /* @__PURE__ */ __name(function(e) {
    let t;
    try {
      t = e instanceof Error;
    } catch {
      t = false;
    }
    return t;
  }, "__wbg_instanceof_Error_80a725f81f2e102d"), __wbg_instanceof_Map_b2611749102d7ba3: /* @__PURE__ */ __name(function(e) {
    let t;
    try {
      t = e instanceof Map;
    } catch {
      t = false;
    }
    return t;
  }, "__wbg_instanceof_Map_b2611749102d7ba3"), __wbg_instanceof_Uint8Array_828cef2aaacafc31: /* @__PURE__ */ __name(function(e) {
    let t;
    try {
      t = e instanceof Uint8Array;
    } catch {
      t = false;
    }
    return t;
  }, "__wbg_instanceof_Uint8Array_828cef2aaacafc31"), __wbg_isArray_e15a2ff68ffdbef2: /* @__PURE__ */ __name(function(e) {
    return Array.isArray(e);
  }, "__wbg_isArray_e15a2ff68ffdbef2"), __wbg_isSafeInteger_717808ad6a54bd9e: /* @__PURE__ */ __name(function(e) {
    return Number.isSafeInteger(e);
  }, "__wbg_isSafeInteger_717808ad6a54bd9e"), __wbg_iterator_e3c31c892080e444: /* @__PURE__ */ __name(function() {
    return Symbol.iterator;
  }, "__wbg_iterator_e3c31c892080e444"), __wbg_length_7f3c00c40364105e: /* @__PURE__ */ __name(function(e) {
    return e.length;
  }, "__wbg_length_7f3c00c40364105e"), __wbg_length_d4bdea10311bd9cf: /* @__PURE__ */ __name(function(e) {
    return e.length;
  }, "__wbg_length_d4bdea10311bd9cf"), __wbg_message_5f8387f0c32b90a7: /* @__PURE__ */ __name(function(e) {
    return e.message;
  }, "__wbg_message_5f8387f0c32b90a7"), __wbg_meta_594bb85654c055e4: /* @__PURE__ */ __name(function(e) {
    return e.meta;
  }, "__wbg_meta_594bb85654c055e4"), __wbg_method_6d02ee0808a7de31: /* @__PURE__ */ __name(function(e, t) {
    let n = t.method, _ = h(n, i.__wbindgen_malloc, i.__wbindgen_realloc), o = g;
    u().setInt32(e + 4, o, true), u().setInt32(e + 0, _, true);
  }, "__wbg_method_6d02ee0808a7de31"), __wbg_msCrypto_bd5a034af96bcba6: /* @__PURE__ */ __name(function(e) {
    return e.msCrypto;
  }, "__wbg_msCrypto_bd5a034af96bcba6"), __wbg_name_e2eac7cdfa054f65: /* @__PURE__ */ __name(function(e) {
    return e.name;
  }, "__wbg_name_e2eac7cdfa054f65"), __wbg_name_f9b814d78e8e299f: /* @__PURE__ */ __name(function(e) {
    return e.name;
  }, "__wbg_name_f9b814d78e8e299f"), __wbg_new_0_72d020f0c63443d4: /* @__PURE__ */ __name(function() {
    return /* @__PURE__ */ new Date();
  }, "__wbg_new_0_72d020f0c63443d4"), __wbg_new_1dbf7428bba60a42: /* @__PURE__ */ __name(function(e) {
    return new Uint8Array(e);
  }, "__wbg_new_1dbf7428bba60a42"), __wbg_new_28744009d011f847: /* @__PURE__ */ __name(function() {
    return /* @__PURE__ */ new Map();
  }, "__wbg_new_28744009d011f847"), __wbg_new_343a093a3c2ffb4e: /* @__PURE__ */ __name(function(e, t) {
    return new Error(l(e, t));
  }, "__wbg_new_343a093a3c2ffb4e"), __wbg_new_617a8cdb8bb1130e: /* @__PURE__ */ __name(function() {
    return new Object();
  }, "__wbg_new_617a8cdb8bb1130e"), __wbg_new_83ca405eae412a62: /* @__PURE__ */ __name(function() {
    return new Headers();
  }, "__wbg_new_83ca405eae412a62"), __wbg_new_big_int_84cdc69174f81f5b: /* @__PURE__ */ __name(function(e) {
    return new FixedLengthStream(e);
  }, "__wbg_new_big_int_84cdc69174f81f5b"), __wbg_new_ee2291f50781bf1d: /* @__PURE__ */ __name(function() {
    return new Array();
  }, "__wbg_new_ee2291f50781bf1d"), __wbg_new_f569a2e335eed0bb: /* @__PURE__ */ __name(function(e) {
    return new FixedLengthStream(e >>> 0);
  }, "__wbg_new_f569a2e335eed0bb"), __wbg_new_typed_b01cb72a8af741a3: /* @__PURE__ */ __name(function(e, t) {
    try {
      var n = { a: e, b: t }, _ = /* @__PURE__ */ __name((f, d) => {
        let w = n.a;
        n.a = 0;
        try {
          return re(w, n.b, f, d);
        } finally {
          n.a = w;
        }
      }, "_");
      return new Promise(_);
    } finally {
      n.a = 0;
    }
  }, "__wbg_new_typed_b01cb72a8af741a3"), __wbg_new_with_byte_offset_and_length_2f5d7fc2a828b74d: /* @__PURE__ */ __name(function(e, t, n) {
    return new Uint8Array(e, t >>> 0, n >>> 0);
  }, "__wbg_new_with_byte_offset_and_length_2f5d7fc2a828b74d"), __wbg_new_with_into_underlying_source_a57cfcc7c705351c: /* @__PURE__ */ __name(function(e, t) {
    return new ReadableStream(W.__wrap(e), t);
  }, "__wbg_new_with_into_underlying_source_a57cfcc7c705351c"), __wbg_new_with_length_3da0ad195f6f63ba: /* @__PURE__ */ __name(function(e) {
    return new Uint8Array(e >>> 0);
  }, "__wbg_new_with_length_3da0ad195f6f63ba"), __wbg_new_with_opt_buffer_source_and_init_c1b859a23c80afca: /* @__PURE__ */ __name(function(e, t) {
    return new Response(e, t);
  }, "__wbg_new_with_opt_buffer_source_and_init_c1b859a23c80afca"), __wbg_new_with_opt_readable_stream_and_init_df114f2d364f216d: /* @__PURE__ */ __name(function(e, t) {
    return new Response(e, t);
  }, "__wbg_new_with_opt_readable_stream_and_init_df114f2d364f216d"), __wbg_new_with_opt_str_and_init_33bef1b272950372: /* @__PURE__ */ __name(function(e, t, n) {
    return new Response(e === 0 ? void 0 : l(e, t), n);
  }, "__wbg_new_with_opt_str_and_init_33bef1b272950372"), __wbg_next_33784799010f1bbe: /* @__PURE__ */ __name(function(e) {
    return e.next;
  }, "__wbg_next_33784799010f1bbe"), __wbg_next_f4aac29c42af995c: /* @__PURE__ */ __name(function(e) {
    return e.next();
  }, "__wbg_next_f4aac29c42af995c"), __wbg_node_84ea875411254db1: /* @__PURE__ */ __name(function(e) {
    return e.node;
  }, "__wbg_node_84ea875411254db1"), __wbg_now_aa4ccb83129e9e55: /* @__PURE__ */ __name(function() {
    return Date.now();
  }, "__wbg_now_aa4ccb83129e9e55"), __wbg_parse_0fc53dead14b3b42: /* @__PURE__ */ __name(function(e, t) {
    return JSON.parse(l(e, t));
  }, "__wbg_parse_0fc53dead14b3b42"), __wbg_pipeTo_ac05d32161ffb42c: /* @__PURE__ */ __name(function(e, t) {
    return e.pipeTo(t);
  }, "__wbg_pipeTo_ac05d32161ffb42c"), __wbg_prepare_c5a549d661139dc2: /* @__PURE__ */ __name(function(e, t, n) {
    return e.prepare(l(t, n));
  }, "__wbg_prepare_c5a549d661139dc2"), __wbg_process_44c7a14e11e9f69e: /* @__PURE__ */ __name(function(e) {
    return e.process;
  }, "__wbg_process_44c7a14e11e9f69e"), __wbg_prototypesetcall_bc27214492979395: /* @__PURE__ */ __name(function(e, t, n) {
    Uint8Array.prototype.set.call(k(e, t), n);
  }, "__wbg_prototypesetcall_bc27214492979395"), __wbg_push_2baf45db356cf468: /* @__PURE__ */ __name(function(e, t) {
    return e.push(t);
  }, "__wbg_push_2baf45db356cf468"), __wbg_put_ece41e2507acd81b: /* @__PURE__ */ __name(function(e, t, n, _, o) {
    let f, d;
    try {
      return f = t, d = n, e.put(l(t, n), _, o);
    } finally {
      c();
      try {
        i.__wbindgen_free(f, d, 1);
      } catch (w) {
        s(w);
      }
    }
  }, "__wbg_put_ece41e2507acd81b"), __wbg_queueMicrotask_9833f9a49df95a49: /* @__PURE__ */ __name(function(e) {
    return e.queueMicrotask;
  }, "__wbg_queueMicrotask_9833f9a49df95a49"), __wbg_queueMicrotask_a72f977e97f23c5f: /* @__PURE__ */ __name(function(e) {
    queueMicrotask(e);
  }, "__wbg_queueMicrotask_a72f977e97f23c5f"), __wbg_randomFillSync_6c25eac9869eb53c: /* @__PURE__ */ __name(function(e, t) {
    e.randomFillSync(t);
  }, "__wbg_randomFillSync_6c25eac9869eb53c"), __wbg_readable_4d43535945ae9ca0: /* @__PURE__ */ __name(function(e) {
    return e.readable;
  }, "__wbg_readable_4d43535945ae9ca0"), __wbg_require_b4edbdcf3e2a1ef0: /* @__PURE__ */ __name(function() {
    return module.require;
  }, "__wbg_require_b4edbdcf3e2a1ef0"), __wbg_resolve_0076e10020304ede: /* @__PURE__ */ __name(function(e) {
    return Promise.resolve(e);
  }, "__wbg_resolve_0076e10020304ede"), __wbg_respond_c102fabcc79e5ef0: /* @__PURE__ */ __name(function(e, t) {
    e.respond(t >>> 0);
  }, "__wbg_respond_c102fabcc79e5ef0"), __wbg_results_a5533c886ed43a9a: /* @__PURE__ */ __name(function(e) {
    let t = e.results;
    return b(t) ? 0 : p(t);
  }, "__wbg_results_a5533c886ed43a9a"), __wbg_sendBatch_4e659d382b81e768: /* @__PURE__ */ __name(function(e, t, n) {
    return e.sendBatch(t, n);
  }, "__wbg_sendBatch_4e659d382b81e768"), __wbg_set_145a351398b48c65: /* @__PURE__ */ __name(function(e, t, n) {
    return Reflect.set(e, t, n);
  }, "__wbg_set_145a351398b48c65"), __wbg_set_575d3ddb70fe831d: /* @__PURE__ */ __name(function(e, t, n) {
    e.set(k(t, n));
  }, "__wbg_set_575d3ddb70fe831d"), __wbg_set_6ae97e73113c4f0b: /* @__PURE__ */ __name(function(e, t, n) {
    return e.set(t, n);
  }, "__wbg_set_6ae97e73113c4f0b"), __wbg_set_6be42768c690e380: /* @__PURE__ */ __name(function(e, t, n) {
    e[t] = n;
  }, "__wbg_set_6be42768c690e380"), __wbg_set_af5932e3f78b5648: /* @__PURE__ */ __name(function(e, t, n, _, o) {
    e.set(l(t, n), l(_, o));
  }, "__wbg_set_af5932e3f78b5648"), __wbg_set_bea140a88be9b277: /* @__PURE__ */ __name(function(e, t, n) {
    e[t >>> 0] = n;
  }, "__wbg_set_bea140a88be9b277"), __wbg_set_criticalError_3904d60fe2a0b05b: /* @__PURE__ */ __name(function(e, t) {
    e.criticalError = t !== 0;
  }, "__wbg_set_criticalError_3904d60fe2a0b05b"), __wbg_set_headers_69ef7c46a2e6c742: /* @__PURE__ */ __name(function(e, t) {
    e.headers = t;
  }, "__wbg_set_headers_69ef7c46a2e6c742"), __wbg_set_high_water_mark_3a96edf83df7e06c: /* @__PURE__ */ __name(function(e, t) {
    e.highWaterMark = t;
  }, "__wbg_set_high_water_mark_3a96edf83df7e06c"), __wbg_set_instanceId_9ad5caac0a4e519c: /* @__PURE__ */ __name(function(e, t) {
    e.instanceId = t >>> 0;
  }, "__wbg_set_instanceId_9ad5caac0a4e519c"), __wbg_set_status_678f122cbe435d95: /* @__PURE__ */ __name(function(e, t) {
    e.status = t;
  }, "__wbg_set_status_678f122cbe435d95"), __wbg_static_accessor_GLOBAL_266715b9d96ba635: /* @__PURE__ */ __name(function() {
    let e = typeof global > "u" ? null : global;
    return b(e) ? 0 : p(e);
  }, "__wbg_static_accessor_GLOBAL_266715b9d96ba635"), __wbg_static_accessor_GLOBAL_THIS_10fb7dc1ae063179: /* @__PURE__ */ __name(function() {
    let e = typeof globalThis > "u" ? null : globalThis;
    return b(e) ? 0 : p(e);
  }, "__wbg_static_accessor_GLOBAL_THIS_10fb7dc1ae063179"), __wbg_static_accessor_INIT_STATE_e3fce2ad8a08e94e: /* @__PURE__ */ __name(function() {
    return H;
  }, "__wbg_static_accessor_INIT_STATE_e3fce2ad8a08e94e"), __wbg_static_accessor_SELF_0b583911f537483a: /* @__PURE__ */ __name(function() {
    let e = typeof self > "u" ? null : self;
    return b(e) ? 0 : p(e);
  }, "__wbg_static_accessor_SELF_0b583911f537483a"), __wbg_static_accessor_WINDOW_d7f903d1508cbdc4: /* @__PURE__ */ __name(function() {
    let e = typeof window > "u" ? null : window;
    return b(e) ? 0 : p(e);
  }, "__wbg_static_accessor_WINDOW_d7f903d1508cbdc4"), __wbg_stringify_52ff602c1cc4fbb6: /* @__PURE__ */ __name(function(e) {
    return JSON.stringify(e);
  }, "__wbg_stringify_52ff602c1cc4fbb6"), __wbg_subarray_002b94d5e13d1411: /* @__PURE__ */ __name(function(e, t, n) {
    return e.subarray(t >>> 0, n >>> 0);
  }, "__wbg_subarray_002b94d5e13d1411"), __wbg_then_c949d5a25a4e78f8: /* @__PURE__ */ __name(function(e, t, n) {
    return e.then(t, n);
  }, "__wbg_then_c949d5a25a4e78f8"), __wbg_then_e71170d78fcf8954: /* @__PURE__ */ __name(function(e, t) {
    return e.then(t);
  }, "__wbg_then_e71170d78fcf8954"), __wbg_url_7bfada5c2297bc70: /* @__PURE__ */ __name(function(e, t) {
    let n = t.url, _ = h(n, i.__wbindgen_malloc, i.__wbindgen_realloc), o = g;
    u().setInt32(e + 4, o, true), u().setInt32(e + 0, _, true);
  }, "__wbg_url_7bfada5c2297bc70"), __wbg_value_f3c585ee8f5ba40c: /* @__PURE__ */ __name(function(e) {
    return e.value;
  }, "__wbg_value_f3c585ee8f5ba40c"), __wbg_versions_276b2795b1c6a219: /* @__PURE__ */ __name(function(e) {
    return e.versions;
  }, "__wbg_versions_276b2795b1c6a219"), __wbg_view_9c570f33e8d6ab96: /* @__PURE__ */ __name(function(e) {
    let t = e.view;
    return b(t) ? 0 : p(t);
  }, "__wbg_view_9c570f33e8d6ab96"), __wbg_withSession_b0b32ea064424efe: /* @__PURE__ */ __name(function(e, t, n) {
    return e.withSession(t === 0 ? void 0 : l(t, n));
  }, "__wbg_withSession_b0b32ea064424efe"), __wbg_writable_44735d15a1cee85d: /* @__PURE__ */ __name(function(e) {
    return e.writable;
  }, "__wbg_writable_44735d15a1cee85d"), __wbindgen_generic_0000000000000001: /* @__PURE__ */ __name(function(e, t) {
    return ue(e, t, ne);
  }, "__wbindgen_generic_0000000000000001"), __wbindgen_generic_0000000000000002: /* @__PURE__ */ __name(function(e) {
    return e;
  }, "__wbindgen_generic_0000000000000002"), __wbindgen_generic_0000000000000003: /* @__PURE__ */ __name(function(e) {
    return e;
  }, "__wbindgen_generic_0000000000000003"), __wbindgen_generic_0000000000000004: /* @__PURE__ */ __name(function(e, t) {
    return k(e, t);
  }, "__wbindgen_generic_0000000000000004"), __wbindgen_generic_0000000000000005: /* @__PURE__ */ __name(function(e, t) {
    return l(e, t);
  }, "__wbindgen_generic_0000000000000005"), __wbindgen_generic_0000000000000006: /* @__PURE__ */ __name(function(e) {
    return BigInt.asUintN(64, e);
  }, "__wbindgen_generic_0000000000000006"), __wbindgen_init_externref_table: /* @__PURE__ */ __name(function() {
    let e = i.__wbindgen_externrefs, t = e.grow(4);
    e.set(0, void 0), e.set(t + 0, void 0), e.set(t + 1, null), e.set(t + 2, true), e.set(t + 3, false);
  }, "__wbindgen_init_externref_table"), __wbindgen_jstag: WebAssembly.JSTag, __wbindgen_rethrow_critical: /* @__PURE__ */ __name(function(e) {
    throw new Error("Critical error", { cause: e });
  }, "__wbindgen_rethrow_critical") } };
}
__name(Z, "Z");
var L = new WebAssembly.Tag({ parameters: ["externref"] });
var D;
var N = false;
function ee() {
  N = true;
  try {
    let r2 = V()[i.__abort_handler.value / 4];
    r2 && i.__wbindgen_export.get(r2)();
  } catch {
  }
}
__name(ee, "ee");
function s(r2) {
  throw r2 instanceof WebAssembly.Exception && r2.is(L) ? r2.getArg(L, 0) : (V()[D] = 1, ee(), r2);
}
__name(s, "s");
function c() {
  if (D ??= i.__instance_terminated.value / 4, V()[D]) {
    if (N || ee(), M) {
      O();
      return;
    }
    throw new Error("Module terminated");
  } else M && O();
}
__name(c, "c");
function ne(r2, e, t) {
  let n;
  c();
  try {
    n = i.wasm_bindgen__convert__closures_____invoke__h430dd6dc81cecfa9(r2, e, t);
  } catch (_) {
    s(_);
  }
  if (n[1]) throw de(n[0]);
}
__name(ne, "ne");
function re(r2, e, t, n) {
  c();
  try {
    i.wasm_bindgen__convert__closures_____invoke__h00750db734acdf10(r2, e, t, n);
  } catch (_) {
    s(_);
  }
}
__name(re, "re");
var _e = ["bytes"];
var a = 0;
var ie = typeof FinalizationRegistry > "u" ? { register: /* @__PURE__ */ __name(() => {
}, "register"), unregister: /* @__PURE__ */ __name(() => {
}, "unregister") } : new FinalizationRegistry(({ ptr: r2, instance: e }) => {
  e === a && i.__wbg_containerstartupoptions_free(r2, 1);
});
var oe = typeof FinalizationRegistry > "u" ? { register: /* @__PURE__ */ __name(() => {
}, "register"), unregister: /* @__PURE__ */ __name(() => {
}, "unregister") } : new FinalizationRegistry(({ ptr: r2, instance: e }) => {
  e === a && i.__wbg_intounderlyingbytesource_free(r2, 1);
});
var se = typeof FinalizationRegistry > "u" ? { register: /* @__PURE__ */ __name(() => {
}, "register"), unregister: /* @__PURE__ */ __name(() => {
}, "unregister") } : new FinalizationRegistry(({ ptr: r2, instance: e }) => {
  e === a && i.__wbg_intounderlyingsink_free(r2, 1);
});
var G = typeof FinalizationRegistry > "u" ? { register: /* @__PURE__ */ __name(() => {
}, "register"), unregister: /* @__PURE__ */ __name(() => {
}, "unregister") } : new FinalizationRegistry(({ ptr: r2, instance: e }) => {
  e === a && i.__wbg_intounderlyingsource_free(r2, 1);
});
var ce = typeof FinalizationRegistry > "u" ? { register: /* @__PURE__ */ __name(() => {
}, "register"), unregister: /* @__PURE__ */ __name(() => {
}, "unregister") } : new FinalizationRegistry(({ ptr: r2, instance: e }) => {
  e === a && i.__wbg_minifyconfig_free(r2, 1);
});
var ae = typeof FinalizationRegistry > "u" ? { register: /* @__PURE__ */ __name(() => {
}, "register"), unregister: /* @__PURE__ */ __name(() => {
}, "unregister") } : new FinalizationRegistry(({ ptr: r2, instance: e }) => {
  e === a && i.__wbg_r2range_free(r2, 1);
});
function p(r2) {
  let e = i.__externref_table_alloc();
  return i.__wbindgen_externrefs.set(e, r2), e;
}
__name(p, "p");
var K = typeof FinalizationRegistry > "u" ? { register: /* @__PURE__ */ __name(() => {
}, "register"), unregister: /* @__PURE__ */ __name(() => {
}, "unregister") } : new FinalizationRegistry((r2) => {
  r2.instance === a && i.__wbindgen_destroy_closure(r2.a, r2.b);
});
function U(r2) {
  let e = typeof r2;
  if (e == "number" || e == "boolean" || r2 == null) return `${r2}`;
  if (e == "string") return `"${r2}"`;
  if (e == "symbol") {
    let _ = r2.description;
    return _ == null ? "Symbol" : `Symbol(${_})`;
  }
  if (e == "function") {
    let _ = r2.name;
    return typeof _ == "string" && _.length > 0 ? `Function(${_})` : "Function";
  }
  if (Array.isArray(r2)) {
    let _ = r2.length, o = "[";
    _ > 0 && (o += U(r2[0]));
    for (let f = 1; f < _; f++) o += ", " + U(r2[f]);
    return o += "]", o;
  }
  let t = /\[object ([^\]]+)\]/.exec(toString.call(r2)), n;
  if (t && t.length > 1) n = t[1];
  else return toString.call(r2);
  if (n == "Object") try {
    return "Object(" + JSON.stringify(r2) + ")";
  } catch {
    return "Object";
  }
  return r2 instanceof Error ? `${r2.name}: ${r2.message}
${r2.stack}` : n;
}
__name(U, "U");
function fe(r2, e) {
  r2 = r2 >>> 0;
  let t = u(), n = [];
  for (let _ = r2; _ < r2 + 4 * e; _ += 4) n.push(i.__wbindgen_externrefs.get(t.getUint32(_, true)));
  return i.__externref_drop_slice(r2, e), n;
}
__name(fe, "fe");
function k(r2, e) {
  return r2 = r2 >>> 0, j().subarray(r2 / 1, r2 / 1 + e);
}
__name(k, "k");
var m = null;
function u() {
  return (m === null || m.buffer.detached === true || m.buffer.detached === void 0 && m.buffer !== i.memory.buffer) && (m = new DataView(i.memory.buffer)), m;
}
__name(u, "u");
var R = null;
function V() {
  return (R === null || R.byteLength === 0) && (R = new Int32Array(i.memory.buffer)), R;
}
__name(V, "V");
function l(r2, e) {
  return ge(r2 >>> 0, e);
}
__name(l, "l");
var F = null;
function j() {
  return (F === null || F.byteLength === 0) && (F = new Uint8Array(i.memory.buffer)), F;
}
__name(j, "j");
function b(r2) {
  return r2 == null;
}
__name(b, "b");
function ue(r2, e, t) {
  let n = { a: r2, b: e, cnt: 1, instance: a }, _ = /* @__PURE__ */ __name((...o) => {
    if (n.instance !== a) throw new Error("Cannot invoke closure from previous WASM instance");
    n.cnt++;
    let f = n.a;
    n.a = 0;
    try {
      return t(f, n.b, ...o);
    } finally {
      n.a = f, _._wbg_cb_unref();
    }
  }, "_");
  return _._wbg_cb_unref = () => {
    --n.cnt === 0 && (i.__wbindgen_destroy_closure(n.a, n.b), n.a = 0, K.unregister(n));
  }, K.register(_, n, n), _;
}
__name(ue, "ue");
function be(r2, e) {
  let t = e(r2.length * 4, 4) >>> 0;
  for (let n = 0; n < r2.length; n++) {
    let _ = p(r2[n]);
    u().setUint32(t + 4 * n, _, true);
  }
  return g = r2.length, t;
}
__name(be, "be");
function h(r2, e, t) {
  if (t === void 0) {
    let d = S.encode(r2), w = e(d.length, 1) >>> 0;
    return j().subarray(w, w + d.length).set(d), g = d.length, w;
  }
  let n = r2.length, _ = e(n, 1) >>> 0, o = j(), f = 0;
  for (; f < n; f++) {
    let d = r2.charCodeAt(f);
    if (d > 127) break;
    o[_ + f] = d;
  }
  if (f !== n) {
    f !== 0 && (r2 = r2.slice(f)), _ = t(_, n, n = f + r2.length * 3, 1) >>> 0;
    let d = j().subarray(_ + f, _ + n), w = S.encodeInto(r2, d);
    f += w.written, _ = t(_, n, f, 1) >>> 0;
  }
  return g = f, _;
}
__name(h, "h");
var M = false;
function de(r2) {
  let e = i.__wbindgen_externrefs.get(r2);
  return i.__externref_table_dealloc(r2), e;
}
__name(de, "de");
var te = new TextDecoder("utf-8", { ignoreBOM: true, fatal: true });
te.decode();
function ge(r2, e) {
  return te.decode(j().subarray(r2, r2 + e));
}
__name(ge, "ge");
var S = new TextEncoder();
"encodeInto" in S || (S.encodeInto = function(r2, e) {
  let t = S.encode(r2);
  return e.set(t), { read: r2.length, written: t.length };
});
var g = 0;
var q = new WebAssembly.Instance(Q, Z());
var i = q.exports;
i.__wbindgen_start();
Error.stackTraceLimit = 100;
var y = X();
function $() {
  y.criticalError && (console.log("Reinitializing Wasm application"), O(), y.criticalError = false, y.instanceId++);
}
__name($, "$");
addEventListener("error", (r2) => {
  J(r2.error);
});
function J(r2) {
  r2 instanceof WebAssembly.RuntimeError && (console.error("Critical", r2), y.criticalError = true);
}
__name(J, "J");
var z = class extends le {
  static {
    __name(this, "z");
  }
};
z.prototype.fetch = function(e) {
  return Y.call(this, e, this.env, this.ctx);
};
var he = { set: /* @__PURE__ */ __name((r2, e, t, n) => Reflect.set(r2.instance, e, t, n), "set"), has: /* @__PURE__ */ __name((r2, e) => Reflect.has(r2.instance, e), "has"), deleteProperty: /* @__PURE__ */ __name((r2, e) => Reflect.deleteProperty(r2.instance, e), "deleteProperty"), apply: /* @__PURE__ */ __name((r2, e, t) => Reflect.apply(r2.instance, e, t), "apply"), construct: /* @__PURE__ */ __name((r2, e, t) => Reflect.construct(r2.instance, e, t), "construct"), getPrototypeOf: /* @__PURE__ */ __name((r2) => Reflect.getPrototypeOf(r2.instance), "getPrototypeOf"), setPrototypeOf: /* @__PURE__ */ __name((r2, e) => Reflect.setPrototypeOf(r2.instance, e), "setPrototypeOf"), isExtensible: /* @__PURE__ */ __name((r2) => Reflect.isExtensible(r2.instance), "isExtensible"), preventExtensions: /* @__PURE__ */ __name((r2) => Reflect.preventExtensions(r2.instance), "preventExtensions"), getOwnPropertyDescriptor: /* @__PURE__ */ __name((r2, e) => Reflect.getOwnPropertyDescriptor(r2.instance, e), "getOwnPropertyDescriptor"), defineProperty: /* @__PURE__ */ __name((r2, e, t) => Reflect.defineProperty(r2.instance, e, t), "defineProperty"), ownKeys: /* @__PURE__ */ __name((r2) => Reflect.ownKeys(r2.instance), "ownKeys") };
var P = { construct(r2, e, t) {
  try {
    $();
    let n = { instance: Reflect.construct(r2, e, t), instanceId: y.instanceId, ctor: r2, args: e, newTarget: t };
    return new Proxy(n, { ...he, get(_, o, f) {
      _.instanceId !== y.instanceId && (_.instance = Reflect.construct(_.ctor, _.args, _.newTarget), _.instanceId = y.instanceId);
      let d = Reflect.get(_.instance, o, f);
      return typeof d != "function" ? d : d.constructor === Function ? new Proxy(d, { apply(w, B, C) {
        $();
        try {
          return w.apply(B, C);
        } catch (E) {
          throw J(E), E;
        }
      } }) : new Proxy(d, { async apply(w, B, C) {
        $();
        try {
          return await w.apply(B, C);
        } catch (E) {
          throw J(E), E;
        }
      } });
    } });
  } catch (n) {
    throw y.criticalError = true, n;
  }
} };
var Ie = new Proxy(z, P);
var xe = new Proxy(v, P);
var Ee = new Proxy(I, P);
var Re = new Proxy(x, P);

// ../node_modules/wrangler/templates/middleware/middleware-ensure-req-body-drained.ts
var drainBody = /* @__PURE__ */ __name(async (request, env, _ctx, middlewareCtx) => {
  try {
    return await middlewareCtx.next(request, env);
  } finally {
    try {
      if (request.body !== null && !request.bodyUsed) {
        const reader = request.body.getReader();
        while (!(await reader.read()).done) {
        }
      }
    } catch (e) {
      console.error("Failed to drain the unused request body.", e);
    }
  }
}, "drainBody");
var middleware_ensure_req_body_drained_default = drainBody;

// ../node_modules/wrangler/templates/middleware/middleware-miniflare3-json-error.ts
function reduceError(e) {
  return {
    name: e?.name,
    message: e?.message ?? String(e),
    stack: e?.stack,
    cause: e?.cause === void 0 ? void 0 : reduceError(e.cause)
  };
}
__name(reduceError, "reduceError");
var jsonError = /* @__PURE__ */ __name(async (request, env, _ctx, middlewareCtx) => {
  try {
    return await middlewareCtx.next(request, env);
  } catch (e) {
    const error = reduceError(e);
    const body = JSON.stringify(error);
    const headers = {
      "Content-Type": "application/json",
      "MF-Experimental-Error-Stack": "true"
    };
    const encoded = encodeURIComponent(body);
    if (encoded.length <= 8192) {
      headers["MF-Experimental-Error-Stack-Payload"] = encoded;
    }
    return new Response(body, { status: 500, headers });
  }
}, "jsonError");
var middleware_miniflare3_json_error_default = jsonError;

// .wrangler/tmp/bundle-xVnLmK/middleware-insertion-facade.js
var __INTERNAL_WRANGLER_MIDDLEWARE__ = [
  middleware_ensure_req_body_drained_default,
  middleware_miniflare3_json_error_default
];
var middleware_insertion_facade_default = Ie;

// ../node_modules/wrangler/templates/middleware/common.ts
var __facade_middleware__ = [];
function __facade_register__(...args) {
  __facade_middleware__.push(...args.flat());
}
__name(__facade_register__, "__facade_register__");
function __facade_invokeChain__(request, env, ctx, dispatch, middlewareChain) {
  const [head, ...tail] = middlewareChain;
  const middlewareCtx = {
    dispatch,
    next(newRequest, newEnv) {
      return __facade_invokeChain__(newRequest, newEnv, ctx, dispatch, tail);
    }
  };
  return head(request, env, ctx, middlewareCtx);
}
__name(__facade_invokeChain__, "__facade_invokeChain__");
function __facade_invoke__(request, env, ctx, dispatch, finalMiddleware) {
  return __facade_invokeChain__(request, env, ctx, dispatch, [
    ...__facade_middleware__,
    finalMiddleware
  ]);
}
__name(__facade_invoke__, "__facade_invoke__");

// .wrangler/tmp/bundle-xVnLmK/middleware-loader.entry.ts
var __Facade_ScheduledController__ = class ___Facade_ScheduledController__ {
  constructor(scheduledTime, cron, noRetry) {
    this.scheduledTime = scheduledTime;
    this.cron = cron;
    this.#noRetry = noRetry;
  }
  scheduledTime;
  cron;
  static {
    __name(this, "__Facade_ScheduledController__");
  }
  #noRetry;
  noRetry() {
    if (!(this instanceof ___Facade_ScheduledController__)) {
      throw new TypeError("Illegal invocation");
    }
    this.#noRetry();
  }
};
function wrapExportedHandler(worker) {
  if (__INTERNAL_WRANGLER_MIDDLEWARE__ === void 0 || __INTERNAL_WRANGLER_MIDDLEWARE__.length === 0) {
    return worker;
  }
  for (const middleware of __INTERNAL_WRANGLER_MIDDLEWARE__) {
    __facade_register__(middleware);
  }
  const fetchDispatcher = /* @__PURE__ */ __name(function(request, env, ctx) {
    if (worker.fetch === void 0) {
      throw new Error("Handler does not export a fetch() function.");
    }
    return worker.fetch(request, env, ctx);
  }, "fetchDispatcher");
  return {
    ...worker,
    fetch(request, env, ctx) {
      const dispatcher = /* @__PURE__ */ __name(function(type, init) {
        if (type === "scheduled" && worker.scheduled !== void 0) {
          const controller = new __Facade_ScheduledController__(
            Date.now(),
            init.cron ?? "",
            () => {
            }
          );
          return worker.scheduled(controller, env, ctx);
        }
      }, "dispatcher");
      return __facade_invoke__(request, env, ctx, dispatcher, fetchDispatcher);
    }
  };
}
__name(wrapExportedHandler, "wrapExportedHandler");
function wrapWorkerEntrypoint(klass) {
  if (__INTERNAL_WRANGLER_MIDDLEWARE__ === void 0 || __INTERNAL_WRANGLER_MIDDLEWARE__.length === 0) {
    return klass;
  }
  for (const middleware of __INTERNAL_WRANGLER_MIDDLEWARE__) {
    __facade_register__(middleware);
  }
  return class extends klass {
    #fetchDispatcher = /* @__PURE__ */ __name((request, env, ctx) => {
      this.env = env;
      this.ctx = ctx;
      if (super.fetch === void 0) {
        throw new Error("Entrypoint class does not define a fetch() function.");
      }
      return super.fetch(request);
    }, "#fetchDispatcher");
    #dispatcher = /* @__PURE__ */ __name((type, init) => {
      if (type === "scheduled" && super.scheduled !== void 0) {
        const controller = new __Facade_ScheduledController__(
          Date.now(),
          init.cron ?? "",
          () => {
          }
        );
        return super.scheduled(controller);
      }
    }, "#dispatcher");
    fetch(request) {
      return __facade_invoke__(
        request,
        this.env,
        this.ctx,
        this.#dispatcher,
        this.#fetchDispatcher
      );
    }
  };
}
__name(wrapWorkerEntrypoint, "wrapWorkerEntrypoint");
var WRAPPED_ENTRY;
if (typeof middleware_insertion_facade_default === "object") {
  WRAPPED_ENTRY = wrapExportedHandler(middleware_insertion_facade_default);
} else if (typeof middleware_insertion_facade_default === "function") {
  WRAPPED_ENTRY = wrapWorkerEntrypoint(middleware_insertion_facade_default);
}
var middleware_loader_entry_default = WRAPPED_ENTRY;
export {
  xe as ContainerStartupOptions,
  Ee as MinifyConfig,
  Re as R2Range,
  __INTERNAL_WRANGLER_MIDDLEWARE__,
  middleware_loader_entry_default as default
};
//# sourceMappingURL=index.js.map
