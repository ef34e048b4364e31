var __defProp = Object.defineProperty;
var __name = (target, value) => __defProp(target, "name", { value, configurable: true });

// wrangler-config:config:middleware/patch-console-prefix
var prefix = "[clientdocs-api]";

// ../node_modules/wrangler/templates/middleware/middleware-patch-console-prefix.ts
["log", "debug", "info"].forEach((method) => {
  globalThis.console[method] = new Proxy(globalThis.console[method], {
    apply(target, thisArg, argumentsList) {
      return target.apply(thisArg, [prefix, ...argumentsList]);
    }
  });
});

// ../producers/api/build/index.js
import { WorkerEntrypoint as lt } from "cloudflare:workers";
import Q from "./8cf29a46abac5dc3582b37ce05922af207095852-index_bg.wasm";
var H = globalThis.__worker_init_state = { criticalError: false, instanceId: 0 };
var v = class {
  static {
    __name(this, "v");
  }
  __destroy_into_raw() {
    let t = this.__wbg_ptr;
    return this.__wbg_ptr = 0, it.unregister(this), t;
  }
  free() {
    let t = this.__destroy_into_raw();
    c();
    try {
      i.__wbg_containerstartupoptions_free(t, 0);
    } catch (e) {
      s(e);
    }
  }
  get enableInternet() {
    if (this.__wbg_inst !== void 0 && this.__wbg_inst !== a) throw new Error("Invalid stale object from previous Wasm instance");
    let t;
    c();
    try {
      t = i.__wbg_get_containerstartupoptions_enableInternet(this.__wbg_ptr);
    } catch (e) {
      s(e);
    }
    return t === 16777215 ? void 0 : t !== 0;
  }
  get entrypoint() {
    if (this.__wbg_inst !== void 0 && this.__wbg_inst !== a) throw new Error("Invalid stale object from previous Wasm instance");
    let t;
    c();
    try {
      t = i.__wbg_get_containerstartupoptions_entrypoint(this.__wbg_ptr);
    } catch (n) {
      s(n);
    }
    var e = ft(t[0], t[1]);
    return i.__wbindgen_free(t[0], t[1] * 4, 4), e;
  }
  get env() {
    if (this.__wbg_inst !== void 0 && this.__wbg_inst !== a) throw new Error("Invalid stale object from previous Wasm instance");
    let t;
    c();
    try {
      t = i.__wbg_get_containerstartupoptions_env(this.__wbg_ptr);
    } catch (e) {
      s(e);
    }
    return t;
  }
  set enableInternet(t) {
    if (this.__wbg_inst !== void 0 && this.__wbg_inst !== a) throw new Error("Invalid stale object from previous Wasm instance");
    c();
    try {
      i.__wbg_set_containerstartupoptions_enableInternet(this.__wbg_ptr, b(t) ? 16777215 : t ? 1 : 0);
    } catch (e) {
      s(e);
    }
  }
  set entrypoint(t) {
    if (this.__wbg_inst !== void 0 && this.__wbg_inst !== a) throw new Error("Invalid stale object from previous Wasm instance");
    let e = bt(t, i.__wbindgen_malloc), n = g;
    c();
    try {
      i.__wbg_set_containerstartupoptions_entrypoint(this.__wbg_ptr, e, n);
    } catch (_) {
      s(_);
    }
  }
  set env(t) {
    if (this.__wbg_inst !== void 0 && this.__wbg_inst !== a) throw new Error("Invalid stale object from previous Wasm instance");
    c();
    try {
      i.__wbg_set_containerstartupoptions_env(this.__wbg_ptr, t);
    } catch (e) {
      s(e);
    }
  }
};
Symbol.dispose && (v.prototype[Symbol.dispose] = v.prototype.free);
var A = class {
  static {
    __name(this, "A");
  }
  __destroy_into_raw() {
    let t = this.__wbg_ptr;
    return this.__wbg_ptr = 0, ot.unregister(this), t;
  }
  free() {
    let t = this.__destroy_into_raw();
    c();
    try {
      i.__wbg_intounderlyingbytesource_free(t, 0);
    } catch (e) {
      s(e);
    }
  }
  get autoAllocateChunkSize() {
    if (this.__wbg_inst !== void 0 && this.__wbg_inst !== a) throw new Error("Invalid stale object from previous Wasm instance");
    let t;
    c();
    try {
      t = i.intounderlyingbytesource_autoAllocateChunkSize(this.__wbg_ptr);
    } catch (e) {
      s(e);
    }
    return t >>> 0;
  }
  cancel() {
    if (this.__wbg_inst !== void 0 && this.__wbg_inst !== a) throw new Error("Invalid stale object from previous Wasm instance");
    let t = this.__destroy_into_raw();
    c();
    try {
      i.intounderlyingbytesource_cancel(t);
    } catch (e) {
      s(e);
    }
  }
  pull(t) {
    if (this.__wbg_inst !== void 0 && this.__wbg_inst !== a) throw new Error("Invalid stale object from previous Wasm instance");
    let e;
    c();
    try {
      e = i.intounderlyingbytesource_pull(this.__wbg_ptr, t);
    } catch (n) {
      s(n);
    }
    return e;
  }
  start(t) {
    if (this.__wbg_inst !== void 0 && this.__wbg_inst !== a) throw new Error("Invalid stale object from previous Wasm instance");
    c();
    try {
      i.intounderlyingbytesource_start(this.__wbg_ptr, t);
    } catch (e) {
      s(e);
    }
  }
  get type() {
    if (this.__wbg_inst !== void 0 && this.__wbg_inst !== a) throw new Error("Invalid stale object from previous Wasm instance");
    let t;
    c();
    try {
      t = i.intounderlyingbytesource_type(this.__wbg_ptr);
    } catch (e) {
      s(e);
    }
    return _t[t];
  }
};
Symbol.dispose && (A.prototype[Symbol.dispose] = A.prototype.free);
var T = class {
  static {
    __name(this, "T");
  }
  __destroy_into_raw() {
    let t = this.__wbg_ptr;
    return this.__wbg_ptr = 0, st.unregister(this), t;
  }
  free() {
    let t = this.__destroy_into_raw();
    c();
    try {
      i.__wbg_intounderlyingsink_free(t, 0);
    } catch (e) {
      s(e);
    }
  }
  abort(t) {
    if (this.__wbg_inst !== void 0 && this.__wbg_inst !== a) throw new Error("Invalid stale object from previous Wasm instance");
    let e = this.__destroy_into_raw(), n;
    c();
    try {
      n = i.intounderlyingsink_abort(e, t);
    } catch (_) {
      s(_);
    }
    return n;
  }
  close() {
    if (this.__wbg_inst !== void 0 && this.__wbg_inst !== a) throw new Error("Invalid stale object from previous Wasm instance");
    let t = this.__destroy_into_raw(), e;
    c();
    try {
      e = i.intounderlyingsink_close(t);
    } catch (n) {
      s(n);
    }
    return e;
  }
  write(t) {
    if (this.__wbg_inst !== void 0 && this.__wbg_inst !== a) throw new Error("Invalid stale object from previous Wasm instance");
    let e;
    c();
    try {
      e = i.intounderlyingsink_write(this.__wbg_ptr, t);
    } catch (n) {
      s(n);
    }
    return e;
  }
};
Symbol.dispose && (T.prototype[Symbol.dispose] = T.prototype.free);
var W = class r {
  static {
    __name(this, "r");
  }
  static __wrap(t) {
    let e = Object.create(r.prototype);
    return e.__wbg_ptr = t, Object.defineProperty(e, "__wbg_inst", { value: a, writable: true }), G.register(e, { ptr: t, instance: a }, e), e;
  }
  __destroy_into_raw() {
    let t = this.__wbg_ptr;
    return this.__wbg_ptr = 0, G.unregister(this), t;
  }
  free() {
    let t = this.__destroy_into_raw();
    c();
    try {
      i.__wbg_intounderlyingsource_free(t, 0);
    } catch (e) {
      s(e);
    }
  }
  cancel() {
    if (this.__wbg_inst !== void 0 && this.__wbg_inst !== a) throw new Error("Invalid stale object from previous Wasm instance");
    let t = this.__destroy_into_raw();
    c();
    try {
      i.intounderlyingsource_cancel(t);
    } catch (e) {
      s(e);
    }
  }
  pull(t) {
    if (this.__wbg_inst !== void 0 && this.__wbg_inst !== a) throw new Error("Invalid stale object from previous Wasm instance");
    let e;
    c();
    try {
      e = i.intounderlyingsource_pull(this.__wbg_ptr, t);
    } catch (n) {
      s(n);
    }
    return e;
  }
};
Symbol.dispose && (W.prototype[Symbol.dispose] = W.prototype.free);
var I = class {
  static {
    __name(this, "I");
  }
  __destroy_into_raw() {
    let t = this.__wbg_ptr;
    return this.__wbg_ptr = 0, ct.unregister(this), t;
  }
  free() {
    let t = this.__destroy_into_raw();
    c();
    try {
      i.__wbg_minifyconfig_free(t, 0);
    } catch (e) {
      s(e);
    }
  }
  get css() {
    if (this.__wbg_inst !== void 0 && this.__wbg_inst !== a) throw new Error("Invalid stale object from previous Wasm instance");
    let t;
    c();
    try {
      t = i.__wbg_get_minifyconfig_css(this.__wbg_ptr);
    } catch (e) {
      s(e);
    }
    return t !== 0;
  }
  get html() {
    if (this.__wbg_inst !== void 0 && this.__wbg_inst !== a) throw new Error("Invalid stale object from previous Wasm instance");
    let t;
    c();
    try {
      t = i.__wbg_get_minifyconfig_html(this.__wbg_ptr);
    } catch (e) {
      s(e);
    }
    return t !== 0;
  }
  get js() {
    if (this.__wbg_inst !== void 0 && this.__wbg_inst !== a) throw new Error("Invalid stale object from previous Wasm instance");
    let t;
    c();
    try {
      t = i.__wbg_get_minifyconfig_js(this.__wbg_ptr);
    } catch (e) {
      s(e);
    }
    return t !== 0;
  }
  set css(t) {
    if (this.__wbg_inst !== void 0 && this.__wbg_inst !== a) throw new Error("Invalid stale object from previous Wasm instance");
    c();
    try {
      i.__wbg_set_minifyconfig_css(this.__wbg_ptr, t);
    } catch (e) {
      s(e);
    }
  }
  set html(t) {
    if (this.__wbg_inst !== void 0 && this.__wbg_inst !== a) throw new Error("Invalid stale object from previous Wasm instance");
    c();
    try {
      i.__wbg_set_minifyconfig_html(this.__wbg_ptr, t);
    } catch (e) {
      s(e);
    }
  }
  set js(t) {
    if (this.__wbg_inst !== void 0 && this.__wbg_inst !== a) throw new Error("Invalid stale object from previous Wasm instance");
    c();
    try {
      i.__wbg_set_minifyconfig_js(this.__wbg_ptr, t);
    } catch (e) {
      s(e);
    }
  }
};
Symbol.dispose && (I.prototype[Symbol.dispose] = I.prototype.free);
var x = class {
  static {
    __name(this, "x");
  }
  __destroy_into_raw() {
    let t = this.__wbg_ptr;
    return this.__wbg_ptr = 0, at.unregister(this), t;
  }
  free() {
    let t = this.__destroy_into_raw();
    c();
    try {
      i.__wbg_r2range_free(t, 0);
    } catch (e) {
      s(e);
    }
  }
  get length() {
    if (this.__wbg_inst !== void 0 && this.__wbg_inst !== a) throw new Error("Invalid stale object from previous Wasm instance");
    let t;
    c();
    try {
      t = i.__wbg_get_r2range_length(this.__wbg_ptr);
    } catch (e) {
      s(e);
    }
    return t[0] === 0 ? void 0 : t[1];
  }
  get offset() {
    if (this.__wbg_inst !== void 0 && this.__wbg_inst !== a) throw new Error("Invalid stale object from previous Wasm instance");
    let t;
    c();
    try {
      t = i.__wbg_get_r2range_offset(this.__wbg_ptr);
    } catch (e) {
      s(e);
    }
    return t[0] === 0 ? void 0 : t[1];
  }
  get suffix() {
    if (this.__wbg_inst !== void 0 && this.__wbg_inst !== a) throw new Error("Invalid stale object from previous Wasm instance");
    let t;
    c();
    try {
      t = i.__wbg_get_r2range_suffix(this.__wbg_ptr);
    } catch (e) {
      s(e);
    }
    return t[0] === 0 ? void 0 : t[1];
  }
  set length(t) {
    if (this.__wbg_inst !== void 0 && this.__wbg_inst !== a) throw new Error("Invalid stale object from previous Wasm instance");
    c();
    try {
      i.__wbg_set_r2range_length(this.__wbg_ptr, !b(t), b(t) ? 0 : t);
    } catch (e) {
      s(e);
    }
  }
  set offset(t) {
    if (this.__wbg_inst !== void 0 && this.__wbg_inst !== a) throw new Error("Invalid stale object from previous Wasm instance");
    c();
    try {
      i.__wbg_set_r2range_offset(this.__wbg_ptr, !b(t), b(t) ? 0 : t);
    } catch (e) {
      s(e);
    }
  }
  set suffix(t) {
    if (this.__wbg_inst !== void 0 && this.__wbg_inst !== a) throw new Error("Invalid stale object from previous Wasm instance");
    c();
    try {
      i.__wbg_set_r2range_suffix(this.__wbg_ptr, !b(t), b(t) ? 0 : t);
    } catch (e) {
      s(e);
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
  } catch (t) {
    s(t);
  }
  return r2;
}
__name(X, "X");
function Y(r2, t, e) {
  let n;
  c();
  try {
    n = i.fetch(r2, t, e);
  } catch (_) {
    s(_);
  }
  return n;
}
__name(Y, "Y");
function Z() {
  return { __proto__: null, "./index_bg.js": { __proto__: null, __wbg_Error_30c8987f7c2ed4e2: /* @__PURE__ */ __name(function(t, e) {
    return Error(h(t, e));
  }, "__wbg_Error_30c8987f7c2ed4e2"), __wbg_Number_14af1003b8dd5ead: /* @__PURE__ */ __name(function(t) {
    return Number(t);
  }, "__wbg_Number_14af1003b8dd5ead"), __wbg_String_8564e559799eccda: /* @__PURE__ */ __name(function(t, e) {
    let n = String(e), _ = l(n, i.__wbindgen_malloc, i.__wbindgen_realloc), o = g;
    f().setInt32(t + 4, o, true), f().setInt32(t + 0, _, true);
  }, "__wbg_String_8564e559799eccda"), __wbg___wbindgen_bigint_get_as_i64_a2383202b9353e4c: /* @__PURE__ */ __name(function(t, e) {
    let n = e, _ = typeof n == "bigint" ? n : void 0;
    f().setBigInt64(t + 8, b(_) ? BigInt(0) : _, true), f().setInt32(t + 0, !b(_), true);
  }, "__wbg___wbindgen_bigint_get_as_i64_a2383202b9353e4c"), __wbg___wbindgen_boolean_get_5b446f51afd21013: /* @__PURE__ */ __name(function(t) {
    let e = t, n = typeof e == "boolean" ? e : void 0;
    return b(n) ? 16777215 : n ? 1 : 0;
  }, "__wbg___wbindgen_boolean_get_5b446f51afd21013"), __wbg___wbindgen_debug_string_4687d8d8c2017d52: /* @__PURE__ */ __name(function(t, e) {
    let n = U(e), _ = l(n, i.__wbindgen_malloc, i.__wbindgen_realloc), o = g;
    f().setInt32(t + 4, o, true), f().setInt32(t + 0, _, true);
  }, "__wbg___wbindgen_debug_string_4687d8d8c2017d52"), __wbg___wbindgen_in_92f62ee1427d9e49: /* @__PURE__ */ __name(function(t, e) {
    return t in e;
  }, "__wbg___wbindgen_in_92f62ee1427d9e49"), __wbg___wbindgen_is_bigint_b123553bed3bb382: /* @__PURE__ */ __name(function(t) {
    return typeof t == "bigint";
  }, "__wbg___wbindgen_is_bigint_b123553bed3bb382"), __wbg___wbindgen_is_function_1f9d30630b8b1d3d: /* @__PURE__ */ __name(function(t) {
    return typeof t == "function";
  }, "__wbg___wbindgen_is_function_1f9d30630b8b1d3d"), __wbg___wbindgen_is_null_e343b7d08827ba72: /* @__PURE__ */ __name(function(t) {
    return t === null;
  }, "__wbg___wbindgen_is_null_e343b7d08827ba72"), __wbg___wbindgen_is_null_or_undefined_f9435d56bdcc06df: /* @__PURE__ */ __name(function(t) {
    return t == null;
  }, "__wbg___wbindgen_is_null_or_undefined_f9435d56bdcc06df"), __wbg___wbindgen_is_object_3c45d4f2dde4e749: /* @__PURE__ */ __name(function(t) {
    let e = t;
    return typeof e == "object" && e !== null;
  }, "__wbg___wbindgen_is_object_3c45d4f2dde4e749"), __wbg___wbindgen_is_string_90b56bc79aad6f6c: /* @__PURE__ */ __name(function(t) {
    return typeof t == "string";
  }, "__wbg___wbindgen_is_string_90b56bc79aad6f6c"), __wbg___wbindgen_is_undefined_8865fb403f8fe9d8: /* @__PURE__ */ __name(function(t) {
    return t === void 0;
  }, "__wbg___wbindgen_is_undefined_8865fb403f8fe9d8"), __wbg___wbindgen_jsval_eq_02babf21faa37971: /* @__PURE__ */ __name(function(t, e) {
    return t === e;
  }, "__wbg___wbindgen_jsval_eq_02babf21faa37971"), __wbg___wbindgen_jsval_loose_eq_677f21e468d6b461: /* @__PURE__ */ __name(function(t, e) {
    return t == e;
  }, "__wbg___wbindgen_jsval_loose_eq_677f21e468d6b461"), __wbg___wbindgen_number_get_2e0e7dee9f701a71: /* @__PURE__ */ __name(function(t, e) {
    let n = e, _ = typeof n == "number" ? n : void 0;
    f().setFloat64(t + 8, b(_) ? 0 : _, true), f().setInt32(t + 0, !b(_), true);
  }, "__wbg___wbindgen_number_get_2e0e7dee9f701a71"), __wbg___wbindgen_reinit_3f79fdb34dee3ea9: /* @__PURE__ */ __name(function() {
    M = true;
  }, "__wbg___wbindgen_reinit_3f79fdb34dee3ea9"), __wbg___wbindgen_string_get_0380ccaa2f57f0d9: /* @__PURE__ */ __name(function(t, e) {
    let n = e, _ = typeof n == "string" ? n : void 0;
    var o = b(_) ? 0 : l(_, i.__wbindgen_malloc, i.__wbindgen_realloc), u = g;
    f().setInt32(t + 4, u, true), f().setInt32(t + 0, o, true);
  }, "__wbg___wbindgen_string_get_0380ccaa2f57f0d9"), __wbg___wbindgen_throw_41e9ee4f547fc59a: /* @__PURE__ */ __name(function(t, e) {
    throw new WebAssembly.Exception(L, [new Error(h(t, e))]);
  }, "__wbg___wbindgen_throw_41e9ee4f547fc59a"), __wbg__wbg_cb_unref_dcc1a90847f04c41: /* @__PURE__ */ __name(function(t) {
    t._wbg_cb_unref();
  }, "__wbg__wbg_cb_unref_dcc1a90847f04c41"), __wbg_all_2228d6712e7ddb97: /* @__PURE__ */ __name(function(t) {
    return t.all();
  }, "__wbg_all_2228d6712e7ddb97"), __wbg_arrayBuffer_7b8b2e9be0285525: /* @__PURE__ */ __name(function(t) {
    return t.arrayBuffer();
  }, "__wbg_arrayBuffer_7b8b2e9be0285525"), __wbg_arrayBuffer_aa7cad37be6e6b29: /* @__PURE__ */ __name(function(t) {
    return t.arrayBuffer();
  }, "__wbg_arrayBuffer_aa7cad37be6e6b29"), __wbg_batch_7e8e3902cf32b76b: /* @__PURE__ */ __name(function(t, e) {
    return t.batch(e);
  }, "__wbg_batch_7e8e3902cf32b76b"), __wbg_bind_1f842289d2018ed8: /* @__PURE__ */ __name(function(t, e) {
    return t.bind(...e);
  }, "__wbg_bind_1f842289d2018ed8"), __wbg_buffer_56ec2905a66f58b9: /* @__PURE__ */ __name(function(t) {
    return t.buffer;
  }, "__wbg_buffer_56ec2905a66f58b9"), __wbg_byobRequest_54f7ce41d584549a: /* @__PURE__ */ __name(function(t) {
    let e = t.byobRequest;
    return b(e) ? 0 : p(e);
  }, "__wbg_byobRequest_54f7ce41d584549a"), __wbg_byteLength_9f985b8373f1f3fe: /* @__PURE__ */ __name(function(t) {
    return t.byteLength;
  }, "__wbg_byteLength_9f985b8373f1f3fe"), __wbg_byteOffset_0bd5a6a03553639c: /* @__PURE__ */ __name(function(t) {
    return t.byteOffset;
  }, "__wbg_byteOffset_0bd5a6a03553639c"), __wbg_cacheControl_6ea9be880720803d: /* @__PURE__ */ __name(function(t, e) {
    let n = e.cacheControl;
    var _ = b(n) ? 0 : l(n, i.__wbindgen_malloc, i.__wbindgen_realloc), o = g;
    f().setInt32(t + 4, o, true), f().setInt32(t + 0, _, true);
  }, "__wbg_cacheControl_6ea9be880720803d"), __wbg_cacheExpiry_ee9de6a8c623e1a8: /* @__PURE__ */ __name(function(t) {
    let e = t.cacheExpiry;
    return b(e) ? 0 : p(e);
  }, "__wbg_cacheExpiry_ee9de6a8c623e1a8"), __wbg_call_187d372bd5fdd4aa: /* @__PURE__ */ __name(function(t, e, n) {
    return t.call(e, n);
  }, "__wbg_call_187d372bd5fdd4aa"), __wbg_call_6137034ef55c9d0f: /* @__PURE__ */ __name(function(t, e) {
    return t.call(e);
  }, "__wbg_call_6137034ef55c9d0f"), __wbg_cause_19276d032a32d4bd: /* @__PURE__ */ __name(function(t) {
    return t.cause;
  }, "__wbg_cause_19276d032a32d4bd"), __wbg_cf_b47fe5ff6d015a0d: /* @__PURE__ */ __name(function(t) {
    let e = t.cf;
    return b(e) ? 0 : p(e);
  }, "__wbg_cf_b47fe5ff6d015a0d"), __wbg_close_185286988f30f252: /* @__PURE__ */ __name(function(t) {
    t.close();
  }, "__wbg_close_185286988f30f252"), __wbg_close_748f26698dabe269: /* @__PURE__ */ __name(function(t) {
    t.close();
  }, "__wbg_close_748f26698dabe269"), __wbg_constructor_076176ce0f386e16: /* @__PURE__ */ __name(function(t) {
    return t.constructor;
  }, "__wbg_constructor_076176ce0f386e16"), __wbg_contentDisposition_07447c7ffe1f25b9: /* @__PURE__ */ __name(function(t, e) {
    let n = e.contentDisposition;
    var _ = b(n) ? 0 : l(n, i.__wbindgen_malloc, i.__wbindgen_realloc), o = g;
    f().setInt32(t + 4, o, true), f().setInt32(t + 0, _, true);
  }, "__wbg_contentDisposition_07447c7ffe1f25b9"), __wbg_contentEncoding_0a83e35746c3ada7: /* @__PURE__ */ __name(function(t, e) {
    let n = e.contentEncoding;
    var _ = b(n) ? 0 : l(n, i.__wbindgen_malloc, i.__wbindgen_realloc), o = g;
    f().setInt32(t + 4, o, true), f().setInt32(t + 0, _, true);
  }, "__wbg_contentEncoding_0a83e35746c3ada7"), __wbg_contentLanguage_ac8796c815bdf6a7: /* @__PURE__ */ __name(function(t, e) {
    let n = e.contentLanguage;
    var _ = b(n) ? 0 : l(n, i.__wbindgen_malloc, i.__wbindgen_realloc), o = g;
    f().setInt32(t + 4, o, true), f().setInt32(t + 0, _, true);
  }, "__wbg_contentLanguage_ac8796c815bdf6a7"), __wbg_contentType_e59097c6037d86e1: /* @__PURE__ */ __name(function(t, e) {
    let n = e.contentType;
    var _ = b(n) ? 0 : l(n, i.__wbindgen_malloc, i.__wbindgen_realloc), o = g;
    f().setInt32(t + 4, o, true), f().setInt32(t + 0, _, true);
  }, "__wbg_contentType_e59097c6037d86e1"), __wbg_country_e8b34ad6526ea4f9: /* @__PURE__ */ __name(function(t, e) {
    let n = e.country;
    var _ = b(n) ? 0 : l(n, i.__wbindgen_malloc, i.__wbindgen_realloc), o = g;
    f().setInt32(t + 4, o, true), f().setInt32(t + 0, _, true);
  }, "__wbg_country_e8b34ad6526ea4f9"), __wbg_crypto_38df2bab126b63dc: /* @__PURE__ */ __name(function(t) {
    return t.crypto;
  }, "__wbg_crypto_38df2bab126b63dc"), __wbg_done_b41a1d26cdb37fb6: /* @__PURE__ */ __name(function(t) {
    return t.done;
  }, "__wbg_done_b41a1d26cdb37fb6"), __wbg_enqueue_4a01c128f9a0de16: /* @__PURE__ */ __name(function(t, e) {
    t.enqueue(e);
  }, "__wbg_enqueue_4a01c128f9a0de16"), __wbg_entries_b55ec7e0dc443355: /* @__PURE__ */ __name(function(t) {
    return t.entries();
  }, "__wbg_entries_b55ec7e0dc443355"), __wbg_entries_fb6397112b1de25f: /* @__PURE__ */ __name(function(t) {
    return Object.entries(t);
  }, "__wbg_entries_fb6397112b1de25f"), __wbg_error_00c89883480d27e0: /* @__PURE__ */ __name(function(t, e) {
    let n = e.error;
    var _ = b(n) ? 0 : l(n, i.__wbindgen_malloc, i.__wbindgen_realloc), o = g;
    f().setInt32(t + 4, o, true), f().setInt32(t + 0, _, true);
  }, "__wbg_error_00c89883480d27e0"), __wbg_error_a30e98d44009f1bb: /* @__PURE__ */ __name(function(t, e) {
    console.error(t, e);
  }, "__wbg_error_a30e98d44009f1bb"), __wbg_error_c9cf3fc2064683a9: /* @__PURE__ */ __name(function(t) {
    console.error(t);
  }, "__wbg_error_c9cf3fc2064683a9"), __wbg_getBookmark_45a166c663da511b: /* @__PURE__ */ __name(function(t, e) {
    let n = e.getBookmark();
    var _ = b(n) ? 0 : l(n, i.__wbindgen_malloc, i.__wbindgen_realloc), o = g;
    f().setInt32(t + 4, o, true), f().setInt32(t + 0, _, true);
  }, "__wbg_getBookmark_45a166c663da511b"), __wbg_getRandomValues_a608c4436c19407a: /* @__PURE__ */ __name(function(t, e) {
    globalThis.crypto.getRandomValues(k(t, e));
  }, "__wbg_getRandomValues_a608c4436c19407a"), __wbg_getRandomValues_c44a50d8cfdaebeb: /* @__PURE__ */ __name(function(t, e) {
    t.getRandomValues(e);
  }, "__wbg_getRandomValues_c44a50d8cfdaebeb"), __wbg_getTime_f5a55efff2585d5d: /* @__PURE__ */ __name(function(t) {
    return t.getTime();
  }, "__wbg_getTime_f5a55efff2585d5d"), __wbg_get_31af05bd4842a84f: /* @__PURE__ */ __name(function(t, e) {
    return Reflect.get(t, e);
  }, "__wbg_get_31af05bd4842a84f"), __wbg_get_658f6698067d9515: /* @__PURE__ */ __name(function(t, e) {
    return Reflect.get(t, e);
  }, "__wbg_get_658f6698067d9515"), __wbg_get_6c896e0571ddae51: /* @__PURE__ */ __name(function(t, e) {
    return t[e >>> 0];
  }, "__wbg_get_6c896e0571ddae51"), __wbg_get_834ef2d65b3b5c73: /* @__PURE__ */ __name(function(t, e, n, _) {
    let o, u;
    try {
      return o = e, u = n, t.get(h(e, n), _);
    } finally {
      c();
      try {
        i.__wbindgen_free(o, u, 1);
      } catch (d) {
        s(d);
      }
    }
  }, "__wbg_get_834ef2d65b3b5c73"), __wbg_get_88983e33467eae60: /* @__PURE__ */ __name(function(t, e) {
    let n = Reflect.get(t, e);
    return b(n) ? 0 : p(n);
  }, "__wbg_get_88983e33467eae60"), __wbg_get_unchecked_288889d017702237: /* @__PURE__ */ __name(function(t, e) {
    return t[e >>> 0];
  }, "__wbg_get_unchecked_288889d017702237"), __wbg_get_with_ref_key_6412cf3094599694: /* @__PURE__ */ __name(function(t, e) {
    return t[e];
  }, "__wbg_get_with_ref_key_6412cf3094599694"), __wbg_headers_6930a8bd09b630de: /* @__PURE__ */ __name(function(t) {
    return t.headers;
  }, "__wbg_headers_6930a8bd09b630de"), __wbg_httpMetadata_529f7924a4f73fdd: /* @__PURE__ */ __name(function(t) {
    return t.httpMetadata;
  }, "__wbg_httpMetadata_529f7924a4f73fdd"), __wbg_instanceId_9b67ff33ae8bef8a: /* @__PURE__ */ __name(function(t) {
    return t.instanceId;
  }, "__wbg_instanceId_9b67ff33ae8bef8a"), __wbg_instanceof_ArrayBuffer_a99f175873e5d9b8: /* @__PURE__ */ __name(function(t) {
    let e;
    try {
      e = t instanceof ArrayBuffer;
    } catch {
      e = false;
    }
    return e;
  }, "__wbg_instanceof_ArrayBuffer_a99f175873e5d9b8"), __wbg_instanceof_Error_80a725f81f2e102d: /* @__PURE__ */ __name(function(t) {
    let e;
    try {
      e = t instanceof Error;
    } catch {
      e = false;
    }
    return e;
  }, "__wbg_instanceof_Error_80a725f81f2e102d"), __wbg_instanceof_Map_b2611749102d7ba3: /* @__PURE__ */ __name(function(t) {
    let e;
    try {
      e = t instanceof Map;
    } catch {
      e = false;
    }
    return e;
  }, "__wbg_instanceof_Map_b2611749102d7ba3"), __wbg_instanceof_Uint8Array_828cef2aaacafc31: /* @__PURE__ */ __name(function(t) {
    let e;
    try {
      e = t instanceof Uint8Array;
    } catch {
      e = false;
    }
    return e;
  }, "__wbg_instanceof_Uint8Array_828cef2aaacafc31"), __wbg_isArray_e15a2ff68ffdbef2: /* @__PURE__ */ __name(function(t) {
    return Array.isArray(t);
  }, "__wbg_isArray_e15a2ff68ffdbef2"), __wbg_isSafeInteger_717808ad6a54bd9e: /* @__PURE__ */ __name(function(t) {
    return Number.isSafeInteger(t);
  }, "__wbg_isSafeInteger_717808ad6a54bd9e"), __wbg_iterator_e3c31c892080e444: /* @__PURE__ */ __name(function() {
    return Symbol.iterator;
  }, "__wbg_iterator_e3c31c892080e444"), __wbg_length_7f3c00c40364105e: /* @__PURE__ */ __name(function(t) {
    return t.length;
  }, "__wbg_length_7f3c00c40364105e"), __wbg_length_d4bdea10311bd9cf: /* @__PURE__ */ __name(function(t) {
    return t.length;
  }, "__wbg_length_d4bdea10311bd9cf"), __wbg_message_5f8387f0c32b90a7: /* @__PURE__ */ __name(function(t) {
    return t.message;
  }, "__wbg_message_5f8387f0c32b90a7"), __wbg_meta_594bb85654c055e4: /* @__PURE__ */ __name(function(t) {
    return t.meta;
  }, "__wbg_meta_594bb85654c055e4"), __wbg_method_6d02ee0808a7de31: /* @__PURE__ */ __name(function(t, e) {
    let n = e.method, _ = l(n, i.__wbindgen_malloc, i.__wbindgen_realloc), o = g;
    f().setInt32(t + 4, o, true), f().setInt32(t + 0, _, true);
  }, "__wbg_method_6d02ee0808a7de31"), __wbg_msCrypto_bd5a034af96bcba6: /* @__PURE__ */ __name(function(t) {
    return t.msCrypto;
  }, "__wbg_msCrypto_bd5a034af96bcba6"), __wbg_name_e2eac7cdfa054f65: /* @__PURE__ */ __name(function(t) {
    return t.name;
  }, "__wbg_name_e2eac7cdfa054f65"), __wbg_name_f9b814d78e8e299f: /* @__PURE__ */ __name(function(t) {
    return t.name;
  }, "__wbg_name_f9b814d78e8e299f"), __wbg_new_0_72d020f0c63443d4: /* @__PURE__ */ __name(function() {
    return /* @__PURE__ */ new Date();
  }, "__wbg_new_0_72d020f0c63443d4"), __wbg_new_1dbf7428bba60a42: /* @__PURE__ */ __name(function(t) {
    return new Uint8Array(t);
  }, "__wbg_new_1dbf7428bba60a42"), __wbg_new_343a093a3c2ffb4e: /* @__PURE__ */ __name(function(t, e) {
    return new Error(h(t, e));
  }, "__wbg_new_343a093a3c2ffb4e"), __wbg_new_617a8cdb8bb1130e: /* @__PURE__ */ __name(function() {
    return new Object();
  }, "__wbg_new_617a8cdb8bb1130e"), __wbg_new_83ca405eae412a62: /* @__PURE__ */ __name(function() {
    return new Headers();
  }, "__wbg_new_83ca405eae412a62"), __wbg_new_big_int_84cdc69174f81f5b: /* @__PURE__ */ __name(function(t) {
    return new FixedLengthStream(t);
  }, "__wbg_new_big_int_84cdc69174f81f5b"), __wbg_new_ee2291f50781bf1d: /* @__PURE__ */ __name(function() {
    return new Array();
  }, "__wbg_new_ee2291f50781bf1d"), __wbg_new_f569a2e335eed0bb: /* @__PURE__ */ __name(function(t) {
    return new FixedLengthStream(t >>> 0);
  }, "__wbg_new_f569a2e335eed0bb"), __wbg_new_typed_b01cb72a8af741a3: /* @__PURE__ */ __name(function(t, e) {
    try {
      var n = { a: t, b: e }, _ = /* @__PURE__ */ __name((u, d) => {
        let w = n.a;
        n.a = 0;
        try {
          return rt(w, n.b, u, d);
        } finally {
          n.a = w;
        }
      }, "_");
      return new Promise(_);
    } finally {
      n.a = 0;
    }
  }, "__wbg_new_typed_b01cb72a8af741a3"), __wbg_new_with_byte_offset_and_length_2f5d7fc2a828b74d: /* @__PURE__ */ __name(function(t, e, n) {
    return new Uint8Array(t, e >>> 0, n >>> 0);
  }, "__wbg_new_with_byte_offset_and_length_2f5d7fc2a828b74d"), __wbg_new_with_into_underlying_source_a57cfcc7c705351c: /* @__PURE__ */ __name(function(t, e) {
    return new ReadableStream(W.__wrap(t), e);
  }, "__wbg_new_with_into_underlying_source_a57cfcc7c705351c"), __wbg_new_with_length_3da0ad195f6f63ba: /* @__PURE__ */ __name(function(t) {
    return new Uint8Array(t >>> 0);
  }, "__wbg_new_with_length_3da0ad195f6f63ba"), __wbg_new_with_opt_buffer_source_and_init_c1b859a23c80afca: /* @__PURE__ */ __name(function(t, e) {
    return new Response(t, e);
  }, "__wbg_new_with_opt_buffer_source_and_init_c1b859a23c80afca"), __wbg_new_with_opt_readable_stream_and_init_df114f2d364f216d: /* @__PURE__ */ __name(function(t, e) {
    return new Response(t, e);
  }, "__wbg_new_with_opt_readable_stream_and_init_df114f2d364f216d"), __wbg_new_with_opt_str_and_init_33bef1b272950372: /* @__PURE__ */ __name(function(t, e, n) {
    return new Response(t === 0 ? void 0 : h(t, e), n);
  }, "__wbg_new_with_opt_str_and_init_33bef1b272950372"), __wbg_next_33784799010f1bbe: /* @__PURE__ */ __name(function(t) {
    return t.next;
  }, "__wbg_next_33784799010f1bbe"), __wbg_next_f4aac29c42af995c: /* @__PURE__ */ __name(function(t) {
    return t.next();
  }, "__wbg_next_f4aac29c42af995c"), __wbg_node_84ea875411254db1: /* @__PURE__ */ __name(function(t) {
    return t.node;
  }, "__wbg_node_84ea875411254db1"), __wbg_now_aa4ccb83129e9e55: /* @__PURE__ */ __name(function() {
    return Date.now();
  }, "__wbg_now_aa4ccb83129e9e55"), __wbg_parse_0fc53dead14b3b42: /* @__PURE__ */ __name(function(t, e) {
    return JSON.parse(h(t, e));
  }, "__wbg_parse_0fc53dead14b3b42"), __wbg_pipeTo_ac05d32161ffb42c: /* @__PURE__ */ __name(function(t, e) {
    return t.pipeTo(e);
  }, "__wbg_pipeTo_ac05d32161ffb42c"), __wbg_prepare_c5a549d661139dc2: /* @__PURE__ */ __name(function(t, e, n) {
    return t.prepare(h(e, n));
  }, "__wbg_prepare_c5a549d661139dc2"), __wbg_process_44c7a14e11e9f69e: /* @__PURE__ */ __name(function(t) {
    return t.process;
  }, "__wbg_process_44c7a14e11e9f69e"), __wbg_prototypesetcall_bc27214492979395: /* @__PURE__ */ __name(function(t, e, n) {
    Uint8Array.prototype.set.call(k(t, e), n);
  }, "__wbg_prototypesetcall_bc27214492979395"), __wbg_push_2baf45db356cf468: /* @__PURE__ */ __name(function(t, e) {
    return t.push(e);
  }, "__wbg_push_2baf45db356cf468"), __wbg_put_ece41e2507acd81b: /* @__PURE__ */ __name(function(t, e, n, _, o) {
    let u, d;
    try {
      return u = e, d = n, t.put(h(e, n), _, o);
    } finally {
      c();
      try {
        i.__wbindgen_free(u, d, 1);
      } catch (w) {
        s(w);
      }
    }
  }, "__wbg_put_ece41e2507acd81b"), __wbg_queueMicrotask_9833f9a49df95a49: /* @__PURE__ */ __name(function(t) {
    return t.queueMicrotask;
  }, "__wbg_queueMicrotask_9833f9a49df95a49"), __wbg_queueMicrotask_a72f977e97f23c5f: /* @__PURE__ */ __name(function(t) {
    queueMicrotask(t);
  }, "__wbg_queueMicrotask_a72f977e97f23c5f"), __wbg_randomFillSync_6c25eac9869eb53c: /* @__PURE__ */ __name(function(t, e) {
    t.randomFillSync(e);
  }, "__wbg_randomFillSync_6c25eac9869eb53c"), __wbg_readable_4d43535945ae9ca0: /* @__PURE__ */ __name(function(t) {
    return t.readable;
  }, "__wbg_readable_4d43535945ae9ca0"), __wbg_require_b4edbdcf3e2a1ef0: /* @__PURE__ */ __name(function() {
    return module.require;
  }, "__wbg_require_b4edbdcf3e2a1ef0"), __wbg_resolve_0076e10020304ede: /* @__PURE__ */ __name(function(t) {
    return Promise.resolve(t);
  }, "__wbg_resolve_0076e10020304ede"), __wbg_respond_c102fabcc79e5ef0: /* @__PURE__ */ __name(function(t, e) {
    t.respond(e >>> 0);
  }, "__wbg_respond_c102fabcc79e5ef0"), __wbg_results_a5533c886ed43a9a: /* @__PURE__ */ __name(function(t) {
    let e = t.results;
    return b(e) ? 0 : p(e);
  }, "__wbg_results_a5533c886ed43a9a"), __wbg_sendBatch_4e659d382b81e768: /* @__PURE__ */ __name(function(t, e, n) {
    return t.sendBatch(e, n);
  }, "__wbg_sendBatch_4e659d382b81e768"), __wbg_set_145a351398b48c65: /* @__PURE__ */ __name(function(t, e, n) {
    return Reflect.set(t, e, n);
  }, "__wbg_set_145a351398b48c65"), __wbg_set_575d3ddb70fe831d: /* @__PURE__ */ __name(function(t, e, n) {
    t.set(k(e, n));
  }, "__wbg_set_575d3ddb70fe831d"), __wbg_set_6be42768c690e380: /* @__PURE__ */ __name(function(t, e, n) {
    t[e] = n;
  }, "__wbg_set_6be42768c690e380"), __wbg_set_af5932e3f78b5648: /* @__PURE__ */ __name(function(t, e, n, _, o) {
    t.set(h(e, n), h(_, o));
  }, "__wbg_set_af5932e3f78b5648"), __wbg_set_criticalError_3904d60fe2a0b05b: /* @__PURE__ */ __name(function(t, e) {
    t.criticalError = e !== 0;
  }, "__wbg_set_criticalError_3904d60fe2a0b05b"), __wbg_set_headers_69ef7c46a2e6c742: /* @__PURE__ */ __name(function(t, e) {
    t.headers = e;
  }, "__wbg_set_headers_69ef7c46a2e6c742"), __wbg_set_high_water_mark_3a96edf83df7e06c: /* @__PURE__ */ __name(function(t, e) {
    t.highWaterMark = e;
  }, "__wbg_set_high_water_mark_3a96edf83df7e06c"), __wbg_set_instanceId_9ad5caac0a4e519c: /* @__PURE__ */ __name(function(t, e) {
    t.instanceId = e >>> 0;
  }, "__wbg_set_instanceId_9ad5caac0a4e519c"), __wbg_set_status_678f122cbe435d95: /* @__PURE__ */ __name(function(t, e) {
    t.status = e;
  }, "__wbg_set_status_678f122cbe435d95"), __wbg_static_accessor_GLOBAL_266715b9d96ba635: /* @__PURE__ */ __name(function() {
    let t = typeof global > "u" ? null : global;
    return b(t) ? 0 : p(t);
  }, "__wbg_static_accessor_GLOBAL_266715b9d96ba635"), __wbg_static_accessor_GLOBAL_THIS_10fb7dc1ae063179: /* @__PURE__ */ __name(function() {
    let t = typeof globalThis > "u" ? null : globalThis;
    return b(t) ? 0 : p(t);
  }, "__wbg_static_accessor_GLOBAL_THIS_10fb7dc1ae063179"), __wbg_static_accessor_INIT_STATE_e3fce2ad8a08e94e: /* @__PURE__ */ __name(function() {
    return H;
  }, "__wbg_static_accessor_INIT_STATE_e3fce2ad8a08e94e"), __wbg_static_accessor_SELF_0b583911f537483a: /* @__PURE__ */ __name(function() {
    let t = typeof self > "u" ? null : self;
    return b(t) ? 0 : p(t);
  }, "__wbg_static_accessor_SELF_0b583911f537483a"), __wbg_static_accessor_WINDOW_d7f903d1508cbdc4: /* @__PURE__ */ __name(function() {
    let t = typeof window > "u" ? null : window;
    return b(t) ? 0 : p(t);
  }, "__wbg_static_accessor_WINDOW_d7f903d1508cbdc4"), __wbg_subarray_002b94d5e13d1411: /* @__PURE__ */ __name(function(t, e, n) {
    return t.subarray(e >>> 0, n >>> 0);
  }, "__wbg_subarray_002b94d5e13d1411"), __wbg_then_c949d5a25a4e78f8: /* @__PURE__ */ __name(function(t, e, n) {
    return t.then(e, n);
  }, "__wbg_then_c949d5a25a4e78f8"), __wbg_then_e71170d78fcf8954: /* @__PURE__ */ __name(function(t, e) {
    return t.then(e);
  }, "__wbg_then_e71170d78fcf8954"), __wbg_url_7bfada5c2297bc70: /* @__PURE__ */ __name(function(t, e) {
    let n = e.url, _ = l(n, i.__wbindgen_malloc, i.__wbindgen_realloc), o = g;
    f().setInt32(t + 4, o, true), f().setInt32(t + 0, _, true);
  }, "__wbg_url_7bfada5c2297bc70"), __wbg_value_f3c585ee8f5ba40c: /* @__PURE__ */ __name(function(t) {
    return t.value;
  }, "__wbg_value_f3c585ee8f5ba40c"), __wbg_versions_276b2795b1c6a219: /* @__PURE__ */ __name(function(t) {
    return t.versions;
  }, "__wbg_versions_276b2795b1c6a219"), __wbg_view_9c570f33e8d6ab96: /* @__PURE__ */ __name(function(t) {
    let e = t.view;
    return b(e) ? 0 : p(e);
  }, "__wbg_view_9c570f33e8d6ab96"), __wbg_withSession_b0b32ea064424efe: /* @__PURE__ */ __name(function(t, e, n) {
    return t.withSession(e === 0 ? void 0 : h(e, n));
  }, "__wbg_withSession_b0b32ea064424efe"), __wbg_writable_44735d15a1cee85d: /* @__PURE__ */ __name(function(t) {
    return t.writable;
  }, "__wbg_writable_44735d15a1cee85d"), __wbindgen_generic_0000000000000001: /* @__PURE__ */ __name(function(t, e) {
    return ut(t, e, nt);
  }, "__wbindgen_generic_0000000000000001"), __wbindgen_generic_0000000000000002: /* @__PURE__ */ __name(function(t) {
    return t;
  }, "__wbindgen_generic_0000000000000002"), __wbindgen_generic_0000000000000003: /* @__PURE__ */ __name(function(t) {
    return t;
  }, "__wbindgen_generic_0000000000000003"), __wbindgen_generic_0000000000000004: /* @__PURE__ */ __name(function(t, e) {
    return k(t, e);
  }, "__wbindgen_generic_0000000000000004"), __wbindgen_generic_0000000000000005: /* @__PURE__ */ __name(function(t, e) {
    return h(t, e);
  }, "__wbindgen_generic_0000000000000005"), __wbindgen_generic_0000000000000006: /* @__PURE__ */ __name(function(t) {
    return BigInt.asUintN(64, t);
  }, "__wbindgen_generic_0000000000000006"), __wbindgen_init_externref_table: /* @__PURE__ */ __name(function() {
    let t = i.__wbindgen_externrefs, e = t.grow(4);
    t.set(0, void 0), t.set(e + 0, void 0), t.set(e + 1, null), t.set(e + 2, true), t.set(e + 3, false);
  }, "__wbindgen_init_externref_table"), __wbindgen_jstag: WebAssembly.JSTag, __wbindgen_rethrow_critical: /* @__PURE__ */ __name(function(t) {
    throw new Error("Critical error", { cause: t });
  }, "__wbindgen_rethrow_critical") } };
}
__name(Z, "Z");
var L = new WebAssembly.Tag({ parameters: ["externref"] });
var D;
var N = false;
function tt() {
  N = true;
  try {
    let r2 = V()[i.__abort_handler.value / 4];
    r2 && i.__wbindgen_export.get(r2)();
  } catch {
  }
}
__name(tt, "tt");
function s(r2) {
  throw r2 instanceof WebAssembly.Exception && r2.is(L) ? r2.getArg(L, 0) : (V()[D] = 1, tt(), r2);
}
__name(s, "s");
function c() {
  if (D ??= i.__instance_terminated.value / 4, V()[D]) {
    if (N || tt(), M) {
      O();
      return;
    }
    throw new Error("Module terminated");
  } else M && O();
}
__name(c, "c");
function nt(r2, t, e) {
  let n;
  c();
  try {
    n = i.wasm_bindgen__convert__closures_____invoke__h430dd6dc81cecfa9(r2, t, e);
  } catch (_) {
    s(_);
  }
  if (n[1]) throw dt(n[0]);
}
__name(nt, "nt");
function rt(r2, t, e, n) {
  c();
  try {
    i.wasm_bindgen__convert__closures_____invoke__h00750db734acdf10(r2, t, e, n);
  } catch (_) {
    s(_);
  }
}
__name(rt, "rt");
var _t = ["bytes"];
var a = 0;
var it = typeof FinalizationRegistry > "u" ? { register: /* @__PURE__ */ __name(() => {
}, "register"), unregister: /* @__PURE__ */ __name(() => {
}, "unregister") } : new FinalizationRegistry(({ ptr: r2, instance: t }) => {
  t === a && i.__wbg_containerstartupoptions_free(r2, 1);
});
var ot = typeof FinalizationRegistry > "u" ? { register: /* @__PURE__ */ __name(() => {
}, "register"), unregister: /* @__PURE__ */ __name(() => {
}, "unregister") } : new FinalizationRegistry(({ ptr: r2, instance: t }) => {
  t === a && i.__wbg_intounderlyingbytesource_free(r2, 1);
});
var st = typeof FinalizationRegistry > "u" ? { register: /* @__PURE__ */ __name(() => {
}, "register"), unregister: /* @__PURE__ */ __name(() => {
}, "unregister") } : new FinalizationRegistry(({ ptr: r2, instance: t }) => {
  t === a && i.__wbg_intounderlyingsink_free(r2, 1);
});
var G = typeof FinalizationRegistry > "u" ? { register: /* @__PURE__ */ __name(() => {
}, "register"), unregister: /* @__PURE__ */ __name(() => {
}, "unregister") } : new FinalizationRegistry(({ ptr: r2, instance: t }) => {
  t === a && i.__wbg_intounderlyingsource_free(r2, 1);
});
var ct = typeof FinalizationRegistry > "u" ? { register: /* @__PURE__ */ __name(() => {
}, "register"), unregister: /* @__PURE__ */ __name(() => {
}, "unregister") } : new FinalizationRegistry(({ ptr: r2, instance: t }) => {
  t === a && i.__wbg_minifyconfig_free(r2, 1);
});
var at = typeof FinalizationRegistry > "u" ? { register: /* @__PURE__ */ __name(() => {
}, "register"), unregister: /* @__PURE__ */ __name(() => {
}, "unregister") } : new FinalizationRegistry(({ ptr: r2, instance: t }) => {
  t === a && i.__wbg_r2range_free(r2, 1);
});
function p(r2) {
  let t = i.__externref_table_alloc();
  return i.__wbindgen_externrefs.set(t, r2), t;
}
__name(p, "p");
var K = typeof FinalizationRegistry > "u" ? { register: /* @__PURE__ */ __name(() => {
}, "register"), unregister: /* @__PURE__ */ __name(() => {
}, "unregister") } : new FinalizationRegistry((r2) => {
  r2.instance === a && i.__wbindgen_destroy_closure(r2.a, r2.b);
});
function U(r2) {
  let t = typeof r2;
  if (t == "number" || t == "boolean" || r2 == null) return `${r2}`;
  if (t == "string") return `"${r2}"`;
  if (t == "symbol") {
    let _ = r2.description;
    return _ == null ? "Symbol" : `Symbol(${_})`;
  }
  if (t == "function") {
    let _ = r2.name;
    return typeof _ == "string" && _.length > 0 ? `Function(${_})` : "Function";
  }
  if (Array.isArray(r2)) {
    let _ = r2.length, o = "[";
    _ > 0 && (o += U(r2[0]));
    for (let u = 1; u < _; u++) o += ", " + U(r2[u]);
    return o += "]", o;
  }
  let e = /\[object ([^\]]+)\]/.exec(toString.call(r2)), n;
  if (e && e.length > 1) n = e[1];
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
function ft(r2, t) {
  r2 = r2 >>> 0;
  let e = f(), n = [];
  for (let _ = r2; _ < r2 + 4 * t; _ += 4) n.push(i.__wbindgen_externrefs.get(e.getUint32(_, true)));
  return i.__externref_drop_slice(r2, t), n;
}
__name(ft, "ft");
function k(r2, t) {
  return r2 = r2 >>> 0, j().subarray(r2 / 1, r2 / 1 + t);
}
__name(k, "k");
var m = null;
function f() {
  return (m === null || m.buffer.detached === true || m.buffer.detached === void 0 && m.buffer !== i.memory.buffer) && (m = new DataView(i.memory.buffer)), m;
}
__name(f, "f");
var R = null;
function V() {
  return (R === null || R.byteLength === 0) && (R = new Int32Array(i.memory.buffer)), R;
}
__name(V, "V");
function h(r2, t) {
  return gt(r2 >>> 0, t);
}
__name(h, "h");
var F = null;
function j() {
  return (F === null || F.byteLength === 0) && (F = new Uint8Array(i.memory.buffer)), F;
}
__name(j, "j");
function b(r2) {
  return r2 == null;
}
__name(b, "b");
function ut(r2, t, e) {
  let n = { a: r2, b: t, cnt: 1, instance: a }, _ = /* @__PURE__ */ __name((...o) => {
    if (n.instance !== a) throw new Error("Cannot invoke closure from previous WASM instance");
    n.cnt++;
    let u = n.a;
    n.a = 0;
    try {
      return e(u, n.b, ...o);
    } finally {
      n.a = u, _._wbg_cb_unref();
    }
  }, "_");
  return _._wbg_cb_unref = () => {
    --n.cnt === 0 && (i.__wbindgen_destroy_closure(n.a, n.b), n.a = 0, K.unregister(n));
  }, K.register(_, n, n), _;
}
__name(ut, "ut");
function bt(r2, t) {
  let e = t(r2.length * 4, 4) >>> 0;
  for (let n = 0; n < r2.length; n++) {
    let _ = p(r2[n]);
    f().setUint32(e + 4 * n, _, true);
  }
  return g = r2.length, e;
}
__name(bt, "bt");
function l(r2, t, e) {
  if (e === void 0) {
    let d = S.encode(r2), w = t(d.length, 1) >>> 0;
    return j().subarray(w, w + d.length).set(d), g = d.length, w;
  }
  let n = r2.length, _ = t(n, 1) >>> 0, o = j(), u = 0;
  for (; u < n; u++) {
    let d = r2.charCodeAt(u);
    if (d > 127) break;
    o[_ + u] = d;
  }
  if (u !== n) {
    u !== 0 && (r2 = r2.slice(u)), _ = e(_, n, n = u + r2.length * 3, 1) >>> 0;
    let d = j().subarray(_ + u, _ + n), w = S.encodeInto(r2, d);
    u += w.written, _ = e(_, n, u, 1) >>> 0;
  }
  return g = u, _;
}
__name(l, "l");
var M = false;
function dt(r2) {
  let t = i.__wbindgen_externrefs.get(r2);
  return i.__externref_table_dealloc(r2), t;
}
__name(dt, "dt");
var et = new TextDecoder("utf-8", { ignoreBOM: true, fatal: true });
et.decode();
function gt(r2, t) {
  return et.decode(j().subarray(r2, r2 + t));
}
__name(gt, "gt");
var S = new TextEncoder();
"encodeInto" in S || (S.encodeInto = function(r2, t) {
  let e = S.encode(r2);
  return t.set(e), { read: r2.length, written: e.length };
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
var z = class extends lt {
  static {
    __name(this, "z");
  }
};
z.prototype.fetch = function(t) {
  return Y.call(this, t, this.env, this.ctx);
};
var ht = { set: /* @__PURE__ */ __name((r2, t, e, n) => Reflect.set(r2.instance, t, e, n), "set"), has: /* @__PURE__ */ __name((r2, t) => Reflect.has(r2.instance, t), "has"), deleteProperty: /* @__PURE__ */ __name((r2, t) => Reflect.deleteProperty(r2.instance, t), "deleteProperty"), apply: /* @__PURE__ */ __name((r2, t, e) => Reflect.apply(r2.instance, t, e), "apply"), construct: /* @__PURE__ */ __name((r2, t, e) => Reflect.construct(r2.instance, t, e), "construct"), getPrototypeOf: /* @__PURE__ */ __name((r2) => Reflect.getPrototypeOf(r2.instance), "getPrototypeOf"), setPrototypeOf: /* @__PURE__ */ __name((r2, t) => Reflect.setPrototypeOf(r2.instance, t), "setPrototypeOf"), isExtensible: /* @__PURE__ */ __name((r2) => Reflect.isExtensible(r2.instance), "isExtensible"), preventExtensions: /* @__PURE__ */ __name((r2) => Reflect.preventExtensions(r2.instance), "preventExtensions"), getOwnPropertyDescriptor: /* @__PURE__ */ __name((r2, t) => Reflect.getOwnPropertyDescriptor(r2.instance, t), "getOwnPropertyDescriptor"), defineProperty: /* @__PURE__ */ __name((r2, t, e) => Reflect.defineProperty(r2.instance, t, e), "defineProperty"), ownKeys: /* @__PURE__ */ __name((r2) => Reflect.ownKeys(r2.instance), "ownKeys") };
var P = { construct(r2, t, e) {
  try {
    $();
    let n = { instance: Reflect.construct(r2, t, e), instanceId: y.instanceId, ctor: r2, args: t, newTarget: e };
    return new Proxy(n, { ...ht, get(_, o, u) {
      _.instanceId !== y.instanceId && (_.instance = Reflect.construct(_.ctor, _.args, _.newTarget), _.instanceId = y.instanceId);
      let d = Reflect.get(_.instance, o, u);
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
var It = new Proxy(z, P);
var xt = new Proxy(v, P);
var Et = new Proxy(I, P);
var Rt = new Proxy(x, P);

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

// .wrangler/tmp/bundle-RboFsk/middleware-insertion-facade.js
var __INTERNAL_WRANGLER_MIDDLEWARE__ = [
  middleware_ensure_req_body_drained_default,
  middleware_miniflare3_json_error_default
];
var middleware_insertion_facade_default = It;

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

// .wrangler/tmp/bundle-RboFsk/middleware-loader.entry.ts
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
  xt as ContainerStartupOptions,
  Et as MinifyConfig,
  Rt as R2Range,
  __INTERNAL_WRANGLER_MIDDLEWARE__,
  middleware_loader_entry_default as default
};
//# sourceMappingURL=index.js.map
