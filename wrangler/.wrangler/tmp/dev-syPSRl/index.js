var __defProp = Object.defineProperty;
var __name = (target, value) => __defProp(target, "name", { value, configurable: true });

// wrangler-config:config:middleware/patch-console-prefix
var prefix = "[clientdocs-scheduler]";

// ../node_modules/wrangler/templates/middleware/middleware-patch-console-prefix.ts
["log", "debug", "info"].forEach((method) => {
  globalThis.console[method] = new Proxy(globalThis.console[method], {
    apply(target, thisArg, argumentsList) {
      return target.apply(thisArg, [prefix, ...argumentsList]);
    }
  });
});

// ../schedulers/cron/build/index.js
import { WorkerEntrypoint as ht } from "cloudflare:workers";
import K from "./ede7b8fef79f6b7c3b86d94f55e14fe6cfa99a39-index_bg.wasm";
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
    s();
    try {
      i.__wbg_containerstartupoptions_free(t, 0);
    } catch (e) {
      o(e);
    }
  }
  get enableInternet() {
    if (this.__wbg_inst !== void 0 && this.__wbg_inst !== c) throw new Error("Invalid stale object from previous Wasm instance");
    let t;
    s();
    try {
      t = i.__wbg_get_containerstartupoptions_enableInternet(this.__wbg_ptr);
    } catch (e) {
      o(e);
    }
    return t === 16777215 ? void 0 : t !== 0;
  }
  get entrypoint() {
    if (this.__wbg_inst !== void 0 && this.__wbg_inst !== c) throw new Error("Invalid stale object from previous Wasm instance");
    let t;
    s();
    try {
      t = i.__wbg_get_containerstartupoptions_entrypoint(this.__wbg_ptr);
    } catch (n) {
      o(n);
    }
    var e = ut(t[0], t[1]);
    return i.__wbindgen_free(t[0], t[1] * 4, 4), e;
  }
  get env() {
    if (this.__wbg_inst !== void 0 && this.__wbg_inst !== c) throw new Error("Invalid stale object from previous Wasm instance");
    let t;
    s();
    try {
      t = i.__wbg_get_containerstartupoptions_env(this.__wbg_ptr);
    } catch (e) {
      o(e);
    }
    return t;
  }
  set enableInternet(t) {
    if (this.__wbg_inst !== void 0 && this.__wbg_inst !== c) throw new Error("Invalid stale object from previous Wasm instance");
    s();
    try {
      i.__wbg_set_containerstartupoptions_enableInternet(this.__wbg_ptr, u(t) ? 16777215 : t ? 1 : 0);
    } catch (e) {
      o(e);
    }
  }
  set entrypoint(t) {
    if (this.__wbg_inst !== void 0 && this.__wbg_inst !== c) throw new Error("Invalid stale object from previous Wasm instance");
    let e = dt(t, i.__wbindgen_malloc), n = g;
    s();
    try {
      i.__wbg_set_containerstartupoptions_entrypoint(this.__wbg_ptr, e, n);
    } catch (_) {
      o(_);
    }
  }
  set env(t) {
    if (this.__wbg_inst !== void 0 && this.__wbg_inst !== c) throw new Error("Invalid stale object from previous Wasm instance");
    s();
    try {
      i.__wbg_set_containerstartupoptions_env(this.__wbg_ptr, t);
    } catch (e) {
      o(e);
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
    s();
    try {
      i.__wbg_intounderlyingbytesource_free(t, 0);
    } catch (e) {
      o(e);
    }
  }
  get autoAllocateChunkSize() {
    if (this.__wbg_inst !== void 0 && this.__wbg_inst !== c) throw new Error("Invalid stale object from previous Wasm instance");
    let t;
    s();
    try {
      t = i.intounderlyingbytesource_autoAllocateChunkSize(this.__wbg_ptr);
    } catch (e) {
      o(e);
    }
    return t >>> 0;
  }
  cancel() {
    if (this.__wbg_inst !== void 0 && this.__wbg_inst !== c) throw new Error("Invalid stale object from previous Wasm instance");
    let t = this.__destroy_into_raw();
    s();
    try {
      i.intounderlyingbytesource_cancel(t);
    } catch (e) {
      o(e);
    }
  }
  pull(t) {
    if (this.__wbg_inst !== void 0 && this.__wbg_inst !== c) throw new Error("Invalid stale object from previous Wasm instance");
    let e;
    s();
    try {
      e = i.intounderlyingbytesource_pull(this.__wbg_ptr, t);
    } catch (n) {
      o(n);
    }
    return e;
  }
  start(t) {
    if (this.__wbg_inst !== void 0 && this.__wbg_inst !== c) throw new Error("Invalid stale object from previous Wasm instance");
    s();
    try {
      i.intounderlyingbytesource_start(this.__wbg_ptr, t);
    } catch (e) {
      o(e);
    }
  }
  get type() {
    if (this.__wbg_inst !== void 0 && this.__wbg_inst !== c) throw new Error("Invalid stale object from previous Wasm instance");
    let t;
    s();
    try {
      t = i.intounderlyingbytesource_type(this.__wbg_ptr);
    } catch (e) {
      o(e);
    }
    return _t[t];
  }
};
Symbol.dispose && (A.prototype[Symbol.dispose] = A.prototype.free);
var k = class {
  static {
    __name(this, "k");
  }
  __destroy_into_raw() {
    let t = this.__wbg_ptr;
    return this.__wbg_ptr = 0, st.unregister(this), t;
  }
  free() {
    let t = this.__destroy_into_raw();
    s();
    try {
      i.__wbg_intounderlyingsink_free(t, 0);
    } catch (e) {
      o(e);
    }
  }
  abort(t) {
    if (this.__wbg_inst !== void 0 && this.__wbg_inst !== c) throw new Error("Invalid stale object from previous Wasm instance");
    let e = this.__destroy_into_raw(), n;
    s();
    try {
      n = i.intounderlyingsink_abort(e, t);
    } catch (_) {
      o(_);
    }
    return n;
  }
  close() {
    if (this.__wbg_inst !== void 0 && this.__wbg_inst !== c) throw new Error("Invalid stale object from previous Wasm instance");
    let t = this.__destroy_into_raw(), e;
    s();
    try {
      e = i.intounderlyingsink_close(t);
    } catch (n) {
      o(n);
    }
    return e;
  }
  write(t) {
    if (this.__wbg_inst !== void 0 && this.__wbg_inst !== c) throw new Error("Invalid stale object from previous Wasm instance");
    let e;
    s();
    try {
      e = i.intounderlyingsink_write(this.__wbg_ptr, t);
    } catch (n) {
      o(n);
    }
    return e;
  }
};
Symbol.dispose && (k.prototype[Symbol.dispose] = k.prototype.free);
var T = class {
  static {
    __name(this, "T");
  }
  __destroy_into_raw() {
    let t = this.__wbg_ptr;
    return this.__wbg_ptr = 0, ct.unregister(this), t;
  }
  free() {
    let t = this.__destroy_into_raw();
    s();
    try {
      i.__wbg_intounderlyingsource_free(t, 0);
    } catch (e) {
      o(e);
    }
  }
  cancel() {
    if (this.__wbg_inst !== void 0 && this.__wbg_inst !== c) throw new Error("Invalid stale object from previous Wasm instance");
    let t = this.__destroy_into_raw();
    s();
    try {
      i.intounderlyingsource_cancel(t);
    } catch (e) {
      o(e);
    }
  }
  pull(t) {
    if (this.__wbg_inst !== void 0 && this.__wbg_inst !== c) throw new Error("Invalid stale object from previous Wasm instance");
    let e;
    s();
    try {
      e = i.intounderlyingsource_pull(this.__wbg_ptr, t);
    } catch (n) {
      o(n);
    }
    return e;
  }
};
Symbol.dispose && (T.prototype[Symbol.dispose] = T.prototype.free);
var I = class {
  static {
    __name(this, "I");
  }
  __destroy_into_raw() {
    let t = this.__wbg_ptr;
    return this.__wbg_ptr = 0, at.unregister(this), t;
  }
  free() {
    let t = this.__destroy_into_raw();
    s();
    try {
      i.__wbg_minifyconfig_free(t, 0);
    } catch (e) {
      o(e);
    }
  }
  get css() {
    if (this.__wbg_inst !== void 0 && this.__wbg_inst !== c) throw new Error("Invalid stale object from previous Wasm instance");
    let t;
    s();
    try {
      t = i.__wbg_get_minifyconfig_css(this.__wbg_ptr);
    } catch (e) {
      o(e);
    }
    return t !== 0;
  }
  get html() {
    if (this.__wbg_inst !== void 0 && this.__wbg_inst !== c) throw new Error("Invalid stale object from previous Wasm instance");
    let t;
    s();
    try {
      t = i.__wbg_get_minifyconfig_html(this.__wbg_ptr);
    } catch (e) {
      o(e);
    }
    return t !== 0;
  }
  get js() {
    if (this.__wbg_inst !== void 0 && this.__wbg_inst !== c) throw new Error("Invalid stale object from previous Wasm instance");
    let t;
    s();
    try {
      t = i.__wbg_get_minifyconfig_js(this.__wbg_ptr);
    } catch (e) {
      o(e);
    }
    return t !== 0;
  }
  set css(t) {
    if (this.__wbg_inst !== void 0 && this.__wbg_inst !== c) throw new Error("Invalid stale object from previous Wasm instance");
    s();
    try {
      i.__wbg_set_minifyconfig_css(this.__wbg_ptr, t);
    } catch (e) {
      o(e);
    }
  }
  set html(t) {
    if (this.__wbg_inst !== void 0 && this.__wbg_inst !== c) throw new Error("Invalid stale object from previous Wasm instance");
    s();
    try {
      i.__wbg_set_minifyconfig_html(this.__wbg_ptr, t);
    } catch (e) {
      o(e);
    }
  }
  set js(t) {
    if (this.__wbg_inst !== void 0 && this.__wbg_inst !== c) throw new Error("Invalid stale object from previous Wasm instance");
    s();
    try {
      i.__wbg_set_minifyconfig_js(this.__wbg_ptr, t);
    } catch (e) {
      o(e);
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
    return this.__wbg_ptr = 0, ft.unregister(this), t;
  }
  free() {
    let t = this.__destroy_into_raw();
    s();
    try {
      i.__wbg_r2range_free(t, 0);
    } catch (e) {
      o(e);
    }
  }
  get length() {
    if (this.__wbg_inst !== void 0 && this.__wbg_inst !== c) throw new Error("Invalid stale object from previous Wasm instance");
    let t;
    s();
    try {
      t = i.__wbg_get_r2range_length(this.__wbg_ptr);
    } catch (e) {
      o(e);
    }
    return t[0] === 0 ? void 0 : t[1];
  }
  get offset() {
    if (this.__wbg_inst !== void 0 && this.__wbg_inst !== c) throw new Error("Invalid stale object from previous Wasm instance");
    let t;
    s();
    try {
      t = i.__wbg_get_r2range_offset(this.__wbg_ptr);
    } catch (e) {
      o(e);
    }
    return t[0] === 0 ? void 0 : t[1];
  }
  get suffix() {
    if (this.__wbg_inst !== void 0 && this.__wbg_inst !== c) throw new Error("Invalid stale object from previous Wasm instance");
    let t;
    s();
    try {
      t = i.__wbg_get_r2range_suffix(this.__wbg_ptr);
    } catch (e) {
      o(e);
    }
    return t[0] === 0 ? void 0 : t[1];
  }
  set length(t) {
    if (this.__wbg_inst !== void 0 && this.__wbg_inst !== c) throw new Error("Invalid stale object from previous Wasm instance");
    s();
    try {
      i.__wbg_set_r2range_length(this.__wbg_ptr, !u(t), u(t) ? 0 : t);
    } catch (e) {
      o(e);
    }
  }
  set offset(t) {
    if (this.__wbg_inst !== void 0 && this.__wbg_inst !== c) throw new Error("Invalid stale object from previous Wasm instance");
    s();
    try {
      i.__wbg_set_r2range_offset(this.__wbg_ptr, !u(t), u(t) ? 0 : t);
    } catch (e) {
      o(e);
    }
  }
  set suffix(t) {
    if (this.__wbg_inst !== void 0 && this.__wbg_inst !== c) throw new Error("Invalid stale object from previous Wasm instance");
    s();
    try {
      i.__wbg_set_r2range_suffix(this.__wbg_ptr, !u(t), u(t) ? 0 : t);
    } catch (e) {
      o(e);
    }
  }
};
Symbol.dispose && (x.prototype[Symbol.dispose] = x.prototype.free);
function z() {
  c++, m = null, R = null, F = null, typeof numBytesDecoded < "u" && (numBytesDecoded = 0), typeof g < "u" && (g = 0), q = false, O = false, N = new WebAssembly.Instance(K, Z()), i = N.exports, i.__wbindgen_start();
}
__name(z, "z");
function Q() {
  let r;
  s();
  try {
    r = i.__worker_init_state();
  } catch (t) {
    o(t);
  }
  return r;
}
__name(Q, "Q");
function X(r, t, e) {
  let n;
  s();
  try {
    n = i.fetch(r, t, e);
  } catch (_) {
    o(_);
  }
  return n;
}
__name(X, "X");
function Y(r, t, e) {
  let n;
  s();
  try {
    n = i.scheduled(r, t, e);
  } catch (_) {
    o(_);
  }
  return n;
}
__name(Y, "Y");
function Z() {
  return { __proto__: null, "./index_bg.js": { __proto__: null, __wbg_Error_30c8987f7c2ed4e2: /* @__PURE__ */ __name(function(t, e) {
    return Error(w(t, e));
  }, "__wbg_Error_30c8987f7c2ed4e2"), __wbg_Number_14af1003b8dd5ead: /* @__PURE__ */ __name(function(t) {
    return Number(t);
  }, "__wbg_Number_14af1003b8dd5ead"), __wbg_String_8564e559799eccda: /* @__PURE__ */ __name(function(t, e) {
    let n = String(e), _ = p(n, i.__wbindgen_malloc, i.__wbindgen_realloc), a = g;
    b().setInt32(t + 4, a, true), b().setInt32(t + 0, _, true);
  }, "__wbg_String_8564e559799eccda"), __wbg___wbindgen_bigint_get_as_i64_a2383202b9353e4c: /* @__PURE__ */ __name(function(t, e) {
    let n = e, _ = typeof n == "bigint" ? n : void 0;
    b().setBigInt64(t + 8, u(_) ? BigInt(0) : _, true), b().setInt32(t + 0, !u(_), true);
  }, "__wbg___wbindgen_bigint_get_as_i64_a2383202b9353e4c"), __wbg___wbindgen_boolean_get_5b446f51afd21013: /* @__PURE__ */ __name(function(t) {
    let e = t, n = typeof e == "boolean" ? e : void 0;
    return u(n) ? 16777215 : n ? 1 : 0;
  }, "__wbg___wbindgen_boolean_get_5b446f51afd21013"), __wbg___wbindgen_debug_string_4687d8d8c2017d52: /* @__PURE__ */ __name(function(t, e) {
    let n = D(e), _ = p(n, i.__wbindgen_malloc, i.__wbindgen_realloc), a = g;
    b().setInt32(t + 4, a, true), b().setInt32(t + 0, _, true);
  }, "__wbg___wbindgen_debug_string_4687d8d8c2017d52"), __wbg___wbindgen_in_92f62ee1427d9e49: /* @__PURE__ */ __name(function(t, e) {
    return t in e;
  }, "__wbg___wbindgen_in_92f62ee1427d9e49"), __wbg___wbindgen_is_bigint_b123553bed3bb382: /* @__PURE__ */ __name(function(t) {
    return typeof t == "bigint";
  }, "__wbg___wbindgen_is_bigint_b123553bed3bb382"), __wbg___wbindgen_is_function_1f9d30630b8b1d3d: /* @__PURE__ */ __name(function(t) {
    return typeof t == "function";
  }, "__wbg___wbindgen_is_function_1f9d30630b8b1d3d"), __wbg___wbindgen_is_null_or_undefined_f9435d56bdcc06df: /* @__PURE__ */ __name(function(t) {
    return t == null;
  }, "__wbg___wbindgen_is_null_or_undefined_f9435d56bdcc06df"), __wbg___wbindgen_is_object_3c45d4f2dde4e749: /* @__PURE__ */ __name(function(t) {
    let e = t;
    return typeof e == "object" && e !== null;
  }, "__wbg___wbindgen_is_object_3c45d4f2dde4e749"), __wbg___wbindgen_is_undefined_8865fb403f8fe9d8: /* @__PURE__ */ __name(function(t) {
    return t === void 0;
  }, "__wbg___wbindgen_is_undefined_8865fb403f8fe9d8"), __wbg___wbindgen_jsval_eq_02babf21faa37971: /* @__PURE__ */ __name(function(t, e) {
    return t === e;
  }, "__wbg___wbindgen_jsval_eq_02babf21faa37971"), __wbg___wbindgen_jsval_loose_eq_677f21e468d6b461: /* @__PURE__ */ __name(function(t, e) {
    return t == e;
  }, "__wbg___wbindgen_jsval_loose_eq_677f21e468d6b461"), __wbg___wbindgen_number_get_2e0e7dee9f701a71: /* @__PURE__ */ __name(function(t, e) {
    let n = e, _ = typeof n == "number" ? n : void 0;
    b().setFloat64(t + 8, u(_) ? 0 : _, true), b().setInt32(t + 0, !u(_), true);
  }, "__wbg___wbindgen_number_get_2e0e7dee9f701a71"), __wbg___wbindgen_reinit_3f79fdb34dee3ea9: /* @__PURE__ */ __name(function() {
    O = true;
  }, "__wbg___wbindgen_reinit_3f79fdb34dee3ea9"), __wbg___wbindgen_string_get_0380ccaa2f57f0d9: /* @__PURE__ */ __name(function(t, e) {
    let n = e, _ = typeof n == "string" ? n : void 0;
    var a = u(_) ? 0 : p(_, i.__wbindgen_malloc, i.__wbindgen_realloc), f = g;
    b().setInt32(t + 4, f, true), b().setInt32(t + 0, a, true);
  }, "__wbg___wbindgen_string_get_0380ccaa2f57f0d9"), __wbg___wbindgen_throw_41e9ee4f547fc59a: /* @__PURE__ */ __name(function(t, e) {
    throw new WebAssembly.Exception(L, [new Error(w(t, e))]);
  }, "__wbg___wbindgen_throw_41e9ee4f547fc59a"), __wbg__wbg_cb_unref_dcc1a90847f04c41: /* @__PURE__ */ __name(function(t) {
    t._wbg_cb_unref();
  }, "__wbg__wbg_cb_unref_dcc1a90847f04c41"), __wbg_all_2228d6712e7ddb97: /* @__PURE__ */ __name(function(t) {
    return t.all();
  }, "__wbg_all_2228d6712e7ddb97"), __wbg_arrayBuffer_aa7cad37be6e6b29: /* @__PURE__ */ __name(function(t) {
    return t.arrayBuffer();
  }, "__wbg_arrayBuffer_aa7cad37be6e6b29"), __wbg_batch_7e8e3902cf32b76b: /* @__PURE__ */ __name(function(t, e) {
    return t.batch(e);
  }, "__wbg_batch_7e8e3902cf32b76b"), __wbg_bind_1f842289d2018ed8: /* @__PURE__ */ __name(function(t, e) {
    return t.bind(...e);
  }, "__wbg_bind_1f842289d2018ed8"), __wbg_buffer_56ec2905a66f58b9: /* @__PURE__ */ __name(function(t) {
    return t.buffer;
  }, "__wbg_buffer_56ec2905a66f58b9"), __wbg_byobRequest_54f7ce41d584549a: /* @__PURE__ */ __name(function(t) {
    let e = t.byobRequest;
    return u(e) ? 0 : h(e);
  }, "__wbg_byobRequest_54f7ce41d584549a"), __wbg_byteLength_9f985b8373f1f3fe: /* @__PURE__ */ __name(function(t) {
    return t.byteLength;
  }, "__wbg_byteLength_9f985b8373f1f3fe"), __wbg_byteOffset_0bd5a6a03553639c: /* @__PURE__ */ __name(function(t) {
    return t.byteOffset;
  }, "__wbg_byteOffset_0bd5a6a03553639c"), __wbg_call_187d372bd5fdd4aa: /* @__PURE__ */ __name(function(t, e, n) {
    return t.call(e, n);
  }, "__wbg_call_187d372bd5fdd4aa"), __wbg_call_6137034ef55c9d0f: /* @__PURE__ */ __name(function(t, e) {
    return t.call(e);
  }, "__wbg_call_6137034ef55c9d0f"), __wbg_cause_19276d032a32d4bd: /* @__PURE__ */ __name(function(t) {
    return t.cause;
  }, "__wbg_cause_19276d032a32d4bd"), __wbg_cf_b47fe5ff6d015a0d: /* @__PURE__ */ __name(function(t) {
    let e = t.cf;
    return u(e) ? 0 : h(e);
  }, "__wbg_cf_b47fe5ff6d015a0d"), __wbg_close_185286988f30f252: /* @__PURE__ */ __name(function(t) {
    t.close();
  }, "__wbg_close_185286988f30f252"), __wbg_close_748f26698dabe269: /* @__PURE__ */ __name(function(t) {
    t.close();
  }, "__wbg_close_748f26698dabe269"), __wbg_constructor_076176ce0f386e16: /* @__PURE__ */ __name(function(t) {
    return t.constructor;
  }, "__wbg_constructor_076176ce0f386e16"), __wbg_country_e8b34ad6526ea4f9: /* @__PURE__ */ __name(function(t, e) {
    let n = e.country;
    var _ = u(n) ? 0 : p(n, i.__wbindgen_malloc, i.__wbindgen_realloc), a = g;
    b().setInt32(t + 4, a, true), b().setInt32(t + 0, _, true);
  }, "__wbg_country_e8b34ad6526ea4f9"), __wbg_cron_76b7eba30bc0443e: /* @__PURE__ */ __name(function(t, e) {
    let n = e.cron, _ = p(n, i.__wbindgen_malloc, i.__wbindgen_realloc), a = g;
    b().setInt32(t + 4, a, true), b().setInt32(t + 0, _, true);
  }, "__wbg_cron_76b7eba30bc0443e"), __wbg_delete_4a8ee012c43b86c0: /* @__PURE__ */ __name(function(t, e, n) {
    let _, a;
    try {
      return _ = e, a = n, t.delete(w(e, n));
    } finally {
      s();
      try {
        i.__wbindgen_free(_, a, 1);
      } catch (f) {
        o(f);
      }
    }
  }, "__wbg_delete_4a8ee012c43b86c0"), __wbg_done_b41a1d26cdb37fb6: /* @__PURE__ */ __name(function(t) {
    return t.done;
  }, "__wbg_done_b41a1d26cdb37fb6"), __wbg_enqueue_4a01c128f9a0de16: /* @__PURE__ */ __name(function(t, e) {
    t.enqueue(e);
  }, "__wbg_enqueue_4a01c128f9a0de16"), __wbg_entries_b55ec7e0dc443355: /* @__PURE__ */ __name(function(t) {
    return t.entries();
  }, "__wbg_entries_b55ec7e0dc443355"), __wbg_entries_fb6397112b1de25f: /* @__PURE__ */ __name(function(t) {
    return Object.entries(t);
  }, "__wbg_entries_fb6397112b1de25f"), __wbg_error_00c89883480d27e0: /* @__PURE__ */ __name(function(t, e) {
    let n = e.error;
    var _ = u(n) ? 0 : p(n, i.__wbindgen_malloc, i.__wbindgen_realloc), a = g;
    b().setInt32(t + 4, a, true), b().setInt32(t + 0, _, true);
  }, "__wbg_error_00c89883480d27e0"), __wbg_error_a30e98d44009f1bb: /* @__PURE__ */ __name(function(t, e) {
    console.error(t, e);
  }, "__wbg_error_a30e98d44009f1bb"), __wbg_error_c9cf3fc2064683a9: /* @__PURE__ */ __name(function(t) {
    console.error(t);
  }, "__wbg_error_c9cf3fc2064683a9"), __wbg_getRandomValues_a608c4436c19407a: /* @__PURE__ */ __name(function(t, e) {
    globalThis.crypto.getRandomValues(C(t, e));
  }, "__wbg_getRandomValues_a608c4436c19407a"), __wbg_get_31af05bd4842a84f: /* @__PURE__ */ __name(function(t, e) {
    return Reflect.get(t, e);
  }, "__wbg_get_31af05bd4842a84f"), __wbg_get_658f6698067d9515: /* @__PURE__ */ __name(function(t, e) {
    return Reflect.get(t, e);
  }, "__wbg_get_658f6698067d9515"), __wbg_get_6c896e0571ddae51: /* @__PURE__ */ __name(function(t, e) {
    return t[e >>> 0];
  }, "__wbg_get_6c896e0571ddae51"), __wbg_get_88983e33467eae60: /* @__PURE__ */ __name(function(t, e) {
    let n = Reflect.get(t, e);
    return u(n) ? 0 : h(n);
  }, "__wbg_get_88983e33467eae60"), __wbg_get_unchecked_288889d017702237: /* @__PURE__ */ __name(function(t, e) {
    return t[e >>> 0];
  }, "__wbg_get_unchecked_288889d017702237"), __wbg_get_with_ref_key_6412cf3094599694: /* @__PURE__ */ __name(function(t, e) {
    return t[e];
  }, "__wbg_get_with_ref_key_6412cf3094599694"), __wbg_headers_6930a8bd09b630de: /* @__PURE__ */ __name(function(t) {
    return t.headers;
  }, "__wbg_headers_6930a8bd09b630de"), __wbg_instanceId_9b67ff33ae8bef8a: /* @__PURE__ */ __name(function(t) {
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
  }, "__wbg_length_d4bdea10311bd9cf"), __wbg_log_17c30ef363c61cf4: /* @__PURE__ */ __name(function(t) {
    console.log(t);
  }, "__wbg_log_17c30ef363c61cf4"), __wbg_message_5f8387f0c32b90a7: /* @__PURE__ */ __name(function(t) {
    return t.message;
  }, "__wbg_message_5f8387f0c32b90a7"), __wbg_meta_594bb85654c055e4: /* @__PURE__ */ __name(function(t) {
    return t.meta;
  }, "__wbg_meta_594bb85654c055e4"), __wbg_method_6d02ee0808a7de31: /* @__PURE__ */ __name(function(t, e) {
    let n = e.method, _ = p(n, i.__wbindgen_malloc, i.__wbindgen_realloc), a = g;
    b().setInt32(t + 4, a, true), b().setInt32(t + 0, _, true);
  }, "__wbg_method_6d02ee0808a7de31"), __wbg_name_e2eac7cdfa054f65: /* @__PURE__ */ __name(function(t) {
    return t.name;
  }, "__wbg_name_e2eac7cdfa054f65"), __wbg_name_f9b814d78e8e299f: /* @__PURE__ */ __name(function(t) {
    return t.name;
  }, "__wbg_name_f9b814d78e8e299f"), __wbg_new_1dbf7428bba60a42: /* @__PURE__ */ __name(function(t) {
    return new Uint8Array(t);
  }, "__wbg_new_1dbf7428bba60a42"), __wbg_new_343a093a3c2ffb4e: /* @__PURE__ */ __name(function(t, e) {
    return new Error(w(t, e));
  }, "__wbg_new_343a093a3c2ffb4e"), __wbg_new_617a8cdb8bb1130e: /* @__PURE__ */ __name(function() {
    return new Object();
  }, "__wbg_new_617a8cdb8bb1130e"), __wbg_new_83ca405eae412a62: /* @__PURE__ */ __name(function() {
    return new Headers();
  }, "__wbg_new_83ca405eae412a62"), __wbg_new_ee2291f50781bf1d: /* @__PURE__ */ __name(function() {
    return new Array();
  }, "__wbg_new_ee2291f50781bf1d"), __wbg_new_typed_b01cb72a8af741a3: /* @__PURE__ */ __name(function(t, e) {
    try {
      var n = { a: t, b: e }, _ = /* @__PURE__ */ __name((f, d) => {
        let l = n.a;
        n.a = 0;
        try {
          return rt(l, n.b, f, d);
        } finally {
          n.a = l;
        }
      }, "_");
      return new Promise(_);
    } finally {
      n.a = 0;
    }
  }, "__wbg_new_typed_b01cb72a8af741a3"), __wbg_new_with_byte_offset_and_length_2f5d7fc2a828b74d: /* @__PURE__ */ __name(function(t, e, n) {
    return new Uint8Array(t, e >>> 0, n >>> 0);
  }, "__wbg_new_with_byte_offset_and_length_2f5d7fc2a828b74d"), __wbg_new_with_length_3da0ad195f6f63ba: /* @__PURE__ */ __name(function(t) {
    return new Uint8Array(t >>> 0);
  }, "__wbg_new_with_length_3da0ad195f6f63ba"), __wbg_new_with_opt_buffer_source_and_init_c1b859a23c80afca: /* @__PURE__ */ __name(function(t, e) {
    return new Response(t, e);
  }, "__wbg_new_with_opt_buffer_source_and_init_c1b859a23c80afca"), __wbg_new_with_opt_readable_stream_and_init_df114f2d364f216d: /* @__PURE__ */ __name(function(t, e) {
    return new Response(t, e);
  }, "__wbg_new_with_opt_readable_stream_and_init_df114f2d364f216d"), __wbg_new_with_opt_str_and_init_33bef1b272950372: /* @__PURE__ */ __name(function(t, e, n) {
    return new Response(t === 0 ? void 0 : w(t, e), n);
  }, "__wbg_new_with_opt_str_and_init_33bef1b272950372"), __wbg_next_33784799010f1bbe: /* @__PURE__ */ __name(function(t) {
    return t.next;
  }, "__wbg_next_33784799010f1bbe"), __wbg_next_f4aac29c42af995c: /* @__PURE__ */ __name(function(t) {
    return t.next();
  }, "__wbg_next_f4aac29c42af995c"), __wbg_now_aa4ccb83129e9e55: /* @__PURE__ */ __name(function() {
    return Date.now();
  }, "__wbg_now_aa4ccb83129e9e55"), __wbg_parse_0fc53dead14b3b42: /* @__PURE__ */ __name(function(t, e) {
    return JSON.parse(w(t, e));
  }, "__wbg_parse_0fc53dead14b3b42"), __wbg_prepare_c5a549d661139dc2: /* @__PURE__ */ __name(function(t, e, n) {
    return t.prepare(w(e, n));
  }, "__wbg_prepare_c5a549d661139dc2"), __wbg_prototypesetcall_bc27214492979395: /* @__PURE__ */ __name(function(t, e, n) {
    Uint8Array.prototype.set.call(C(t, e), n);
  }, "__wbg_prototypesetcall_bc27214492979395"), __wbg_push_2baf45db356cf468: /* @__PURE__ */ __name(function(t, e) {
    return t.push(e);
  }, "__wbg_push_2baf45db356cf468"), __wbg_queueMicrotask_9833f9a49df95a49: /* @__PURE__ */ __name(function(t) {
    return t.queueMicrotask;
  }, "__wbg_queueMicrotask_9833f9a49df95a49"), __wbg_queueMicrotask_a72f977e97f23c5f: /* @__PURE__ */ __name(function(t) {
    queueMicrotask(t);
  }, "__wbg_queueMicrotask_a72f977e97f23c5f"), __wbg_resolve_0076e10020304ede: /* @__PURE__ */ __name(function(t) {
    return Promise.resolve(t);
  }, "__wbg_resolve_0076e10020304ede"), __wbg_respond_c102fabcc79e5ef0: /* @__PURE__ */ __name(function(t, e) {
    t.respond(e >>> 0);
  }, "__wbg_respond_c102fabcc79e5ef0"), __wbg_results_a5533c886ed43a9a: /* @__PURE__ */ __name(function(t) {
    let e = t.results;
    return u(e) ? 0 : h(e);
  }, "__wbg_results_a5533c886ed43a9a"), __wbg_scheduledTime_d6f16c8277d5313d: /* @__PURE__ */ __name(function(t) {
    return t.scheduledTime;
  }, "__wbg_scheduledTime_d6f16c8277d5313d"), __wbg_sendBatch_4e659d382b81e768: /* @__PURE__ */ __name(function(t, e, n) {
    return t.sendBatch(e, n);
  }, "__wbg_sendBatch_4e659d382b81e768"), __wbg_set_145a351398b48c65: /* @__PURE__ */ __name(function(t, e, n) {
    return Reflect.set(t, e, n);
  }, "__wbg_set_145a351398b48c65"), __wbg_set_575d3ddb70fe831d: /* @__PURE__ */ __name(function(t, e, n) {
    t.set(C(e, n));
  }, "__wbg_set_575d3ddb70fe831d"), __wbg_set_6be42768c690e380: /* @__PURE__ */ __name(function(t, e, n) {
    t[e] = n;
  }, "__wbg_set_6be42768c690e380"), __wbg_set_af5932e3f78b5648: /* @__PURE__ */ __name(function(t, e, n, _, a) {
    t.set(w(e, n), w(_, a));
  }, "__wbg_set_af5932e3f78b5648"), __wbg_set_criticalError_3904d60fe2a0b05b: /* @__PURE__ */ __name(function(t, e) {
    t.criticalError = e !== 0;
  }, "__wbg_set_criticalError_3904d60fe2a0b05b"), __wbg_set_headers_69ef7c46a2e6c742: /* @__PURE__ */ __name(function(t, e) {
    t.headers = e;
  }, "__wbg_set_headers_69ef7c46a2e6c742"), __wbg_set_instanceId_9ad5caac0a4e519c: /* @__PURE__ */ __name(function(t, e) {
    t.instanceId = e >>> 0;
  }, "__wbg_set_instanceId_9ad5caac0a4e519c"), __wbg_set_status_678f122cbe435d95: /* @__PURE__ */ __name(function(t, e) {
    t.status = e;
  }, "__wbg_set_status_678f122cbe435d95"), __wbg_static_accessor_GLOBAL_266715b9d96ba635: /* @__PURE__ */ __name(function() {
    let t = typeof global > "u" ? null : global;
    return u(t) ? 0 : h(t);
  }, "__wbg_static_accessor_GLOBAL_266715b9d96ba635"), __wbg_static_accessor_GLOBAL_THIS_10fb7dc1ae063179: /* @__PURE__ */ __name(function() {
    let t = typeof globalThis > "u" ? null : globalThis;
    return u(t) ? 0 : h(t);
  }, "__wbg_static_accessor_GLOBAL_THIS_10fb7dc1ae063179"), __wbg_static_accessor_INIT_STATE_e3fce2ad8a08e94e: /* @__PURE__ */ __name(function() {
    return H;
  }, "__wbg_static_accessor_INIT_STATE_e3fce2ad8a08e94e"), __wbg_static_accessor_SELF_0b583911f537483a: /* @__PURE__ */ __name(function() {
    let t = typeof self > "u" ? null : self;
    return u(t) ? 0 : h(t);
  }, "__wbg_static_accessor_SELF_0b583911f537483a"), __wbg_static_accessor_WINDOW_d7f903d1508cbdc4: /* @__PURE__ */ __name(function() {
    let t = typeof window > "u" ? null : window;
    return u(t) ? 0 : h(t);
  }, "__wbg_static_accessor_WINDOW_d7f903d1508cbdc4"), __wbg_then_c949d5a25a4e78f8: /* @__PURE__ */ __name(function(t, e, n) {
    return t.then(e, n);
  }, "__wbg_then_c949d5a25a4e78f8"), __wbg_then_e71170d78fcf8954: /* @__PURE__ */ __name(function(t, e) {
    return t.then(e);
  }, "__wbg_then_e71170d78fcf8954"), __wbg_url_7bfada5c2297bc70: /* @__PURE__ */ __name(function(t, e) {
    let n = e.url, _ = p(n, i.__wbindgen_malloc, i.__wbindgen_realloc), a = g;
    b().setInt32(t + 4, a, true), b().setInt32(t + 0, _, true);
  }, "__wbg_url_7bfada5c2297bc70"), __wbg_value_f3c585ee8f5ba40c: /* @__PURE__ */ __name(function(t) {
    return t.value;
  }, "__wbg_value_f3c585ee8f5ba40c"), __wbg_view_9c570f33e8d6ab96: /* @__PURE__ */ __name(function(t) {
    let e = t.view;
    return u(e) ? 0 : h(e);
  }, "__wbg_view_9c570f33e8d6ab96"), __wbg_withSession_b0b32ea064424efe: /* @__PURE__ */ __name(function(t, e, n) {
    return t.withSession(e === 0 ? void 0 : w(e, n));
  }, "__wbg_withSession_b0b32ea064424efe"), __wbindgen_generic_0000000000000001: /* @__PURE__ */ __name(function(t, e) {
    return bt(t, e, nt);
  }, "__wbindgen_generic_0000000000000001"), __wbindgen_generic_0000000000000002: /* @__PURE__ */ __name(function(t) {
    return t;
  }, "__wbindgen_generic_0000000000000002"), __wbindgen_generic_0000000000000003: /* @__PURE__ */ __name(function(t) {
    return t;
  }, "__wbindgen_generic_0000000000000003"), __wbindgen_generic_0000000000000004: /* @__PURE__ */ __name(function(t, e) {
    return w(t, e);
  }, "__wbindgen_generic_0000000000000004"), __wbindgen_generic_0000000000000005: /* @__PURE__ */ __name(function(t) {
    return BigInt.asUintN(64, t);
  }, "__wbindgen_generic_0000000000000005"), __wbindgen_init_externref_table: /* @__PURE__ */ __name(function() {
    let t = i.__wbindgen_externrefs, e = t.grow(4);
    t.set(0, void 0), t.set(e + 0, void 0), t.set(e + 1, null), t.set(e + 2, true), t.set(e + 3, false);
  }, "__wbindgen_init_externref_table"), __wbindgen_jstag: WebAssembly.JSTag, __wbindgen_rethrow_critical: /* @__PURE__ */ __name(function(t) {
    throw new Error("Critical error", { cause: t });
  }, "__wbindgen_rethrow_critical") } };
}
__name(Z, "Z");
var L = new WebAssembly.Tag({ parameters: ["externref"] });
var U;
var q = false;
function tt() {
  q = true;
  try {
    let r = V()[i.__abort_handler.value / 4];
    r && i.__wbindgen_export.get(r)();
  } catch {
  }
}
__name(tt, "tt");
function o(r) {
  throw r instanceof WebAssembly.Exception && r.is(L) ? r.getArg(L, 0) : (V()[U] = 1, tt(), r);
}
__name(o, "o");
function s() {
  if (U ??= i.__instance_terminated.value / 4, V()[U]) {
    if (q || tt(), O) {
      z();
      return;
    }
    throw new Error("Module terminated");
  } else O && z();
}
__name(s, "s");
function nt(r, t, e) {
  let n;
  s();
  try {
    n = i.wasm_bindgen__convert__closures_____invoke__h430dd6dc81cecfa9(r, t, e);
  } catch (_) {
    o(_);
  }
  if (n[1]) throw gt(n[0]);
}
__name(nt, "nt");
function rt(r, t, e, n) {
  s();
  try {
    i.wasm_bindgen__convert__closures_____invoke__h00750db734acdf10(r, t, e, n);
  } catch (_) {
    o(_);
  }
}
__name(rt, "rt");
var _t = ["bytes"];
var c = 0;
var it = typeof FinalizationRegistry > "u" ? { register: /* @__PURE__ */ __name(() => {
}, "register"), unregister: /* @__PURE__ */ __name(() => {
}, "unregister") } : new FinalizationRegistry(({ ptr: r, instance: t }) => {
  t === c && i.__wbg_containerstartupoptions_free(r, 1);
});
var ot = typeof FinalizationRegistry > "u" ? { register: /* @__PURE__ */ __name(() => {
}, "register"), unregister: /* @__PURE__ */ __name(() => {
}, "unregister") } : new FinalizationRegistry(({ ptr: r, instance: t }) => {
  t === c && i.__wbg_intounderlyingbytesource_free(r, 1);
});
var st = typeof FinalizationRegistry > "u" ? { register: /* @__PURE__ */ __name(() => {
}, "register"), unregister: /* @__PURE__ */ __name(() => {
}, "unregister") } : new FinalizationRegistry(({ ptr: r, instance: t }) => {
  t === c && i.__wbg_intounderlyingsink_free(r, 1);
});
var ct = typeof FinalizationRegistry > "u" ? { register: /* @__PURE__ */ __name(() => {
}, "register"), unregister: /* @__PURE__ */ __name(() => {
}, "unregister") } : new FinalizationRegistry(({ ptr: r, instance: t }) => {
  t === c && i.__wbg_intounderlyingsource_free(r, 1);
});
var at = typeof FinalizationRegistry > "u" ? { register: /* @__PURE__ */ __name(() => {
}, "register"), unregister: /* @__PURE__ */ __name(() => {
}, "unregister") } : new FinalizationRegistry(({ ptr: r, instance: t }) => {
  t === c && i.__wbg_minifyconfig_free(r, 1);
});
var ft = typeof FinalizationRegistry > "u" ? { register: /* @__PURE__ */ __name(() => {
}, "register"), unregister: /* @__PURE__ */ __name(() => {
}, "unregister") } : new FinalizationRegistry(({ ptr: r, instance: t }) => {
  t === c && i.__wbg_r2range_free(r, 1);
});
function h(r) {
  let t = i.__externref_table_alloc();
  return i.__wbindgen_externrefs.set(t, r), t;
}
__name(h, "h");
var G = typeof FinalizationRegistry > "u" ? { register: /* @__PURE__ */ __name(() => {
}, "register"), unregister: /* @__PURE__ */ __name(() => {
}, "unregister") } : new FinalizationRegistry((r) => {
  r.instance === c && i.__wbindgen_destroy_closure(r.a, r.b);
});
function D(r) {
  let t = typeof r;
  if (t == "number" || t == "boolean" || r == null) return `${r}`;
  if (t == "string") return `"${r}"`;
  if (t == "symbol") {
    let _ = r.description;
    return _ == null ? "Symbol" : `Symbol(${_})`;
  }
  if (t == "function") {
    let _ = r.name;
    return typeof _ == "string" && _.length > 0 ? `Function(${_})` : "Function";
  }
  if (Array.isArray(r)) {
    let _ = r.length, a = "[";
    _ > 0 && (a += D(r[0]));
    for (let f = 1; f < _; f++) a += ", " + D(r[f]);
    return a += "]", a;
  }
  let e = /\[object ([^\]]+)\]/.exec(toString.call(r)), n;
  if (e && e.length > 1) n = e[1];
  else return toString.call(r);
  if (n == "Object") try {
    return "Object(" + JSON.stringify(r) + ")";
  } catch {
    return "Object";
  }
  return r instanceof Error ? `${r.name}: ${r.message}
${r.stack}` : n;
}
__name(D, "D");
function ut(r, t) {
  r = r >>> 0;
  let e = b(), n = [];
  for (let _ = r; _ < r + 4 * t; _ += 4) n.push(i.__wbindgen_externrefs.get(e.getUint32(_, true)));
  return i.__externref_drop_slice(r, t), n;
}
__name(ut, "ut");
function C(r, t) {
  return r = r >>> 0, j().subarray(r / 1, r / 1 + t);
}
__name(C, "C");
var m = null;
function b() {
  return (m === null || m.buffer.detached === true || m.buffer.detached === void 0 && m.buffer !== i.memory.buffer) && (m = new DataView(i.memory.buffer)), m;
}
__name(b, "b");
var R = null;
function V() {
  return (R === null || R.byteLength === 0) && (R = new Int32Array(i.memory.buffer)), R;
}
__name(V, "V");
function w(r, t) {
  return lt(r >>> 0, t);
}
__name(w, "w");
var F = null;
function j() {
  return (F === null || F.byteLength === 0) && (F = new Uint8Array(i.memory.buffer)), F;
}
__name(j, "j");
function u(r) {
  return r == null;
}
__name(u, "u");
function bt(r, t, e) {
  let n = { a: r, b: t, cnt: 1, instance: c }, _ = /* @__PURE__ */ __name((...a) => {
    if (n.instance !== c) throw new Error("Cannot invoke closure from previous WASM instance");
    n.cnt++;
    let f = n.a;
    n.a = 0;
    try {
      return e(f, n.b, ...a);
    } finally {
      n.a = f, _._wbg_cb_unref();
    }
  }, "_");
  return _._wbg_cb_unref = () => {
    --n.cnt === 0 && (i.__wbindgen_destroy_closure(n.a, n.b), n.a = 0, G.unregister(n));
  }, G.register(_, n, n), _;
}
__name(bt, "bt");
function dt(r, t) {
  let e = t(r.length * 4, 4) >>> 0;
  for (let n = 0; n < r.length; n++) {
    let _ = h(r[n]);
    b().setUint32(e + 4 * n, _, true);
  }
  return g = r.length, e;
}
__name(dt, "dt");
function p(r, t, e) {
  if (e === void 0) {
    let d = W.encode(r), l = t(d.length, 1) >>> 0;
    return j().subarray(l, l + d.length).set(d), g = d.length, l;
  }
  let n = r.length, _ = t(n, 1) >>> 0, a = j(), f = 0;
  for (; f < n; f++) {
    let d = r.charCodeAt(f);
    if (d > 127) break;
    a[_ + f] = d;
  }
  if (f !== n) {
    f !== 0 && (r = r.slice(f)), _ = e(_, n, n = f + r.length * 3, 1) >>> 0;
    let d = j().subarray(_ + f, _ + n), l = W.encodeInto(r, d);
    f += l.written, _ = e(_, n, f, 1) >>> 0;
  }
  return g = f, _;
}
__name(p, "p");
var O = false;
function gt(r) {
  let t = i.__wbindgen_externrefs.get(r);
  return i.__externref_table_dealloc(r), t;
}
__name(gt, "gt");
var et = new TextDecoder("utf-8", { ignoreBOM: true, fatal: true });
et.decode();
function lt(r, t) {
  return et.decode(j().subarray(r, r + t));
}
__name(lt, "lt");
var W = new TextEncoder();
"encodeInto" in W || (W.encodeInto = function(r, t) {
  let e = W.encode(r);
  return t.set(e), { read: r.length, written: e.length };
});
var g = 0;
var N = new WebAssembly.Instance(K, Z());
var i = N.exports;
i.__wbindgen_start();
Error.stackTraceLimit = 100;
var y = Q();
function $() {
  y.criticalError && (console.log("Reinitializing Wasm application"), z(), y.criticalError = false, y.instanceId++);
}
__name($, "$");
addEventListener("error", (r) => {
  J(r.error);
});
function J(r) {
  r instanceof WebAssembly.RuntimeError && (console.error("Critical", r), y.criticalError = true);
}
__name(J, "J");
var S = class extends ht {
  static {
    __name(this, "S");
  }
};
S.prototype.fetch = function(t) {
  return X.call(this, t, this.env, this.ctx);
};
S.prototype.scheduled = function(t) {
  return Y.call(this, t, this.env, this.ctx);
};
var pt = { set: /* @__PURE__ */ __name((r, t, e, n) => Reflect.set(r.instance, t, e, n), "set"), has: /* @__PURE__ */ __name((r, t) => Reflect.has(r.instance, t), "has"), deleteProperty: /* @__PURE__ */ __name((r, t) => Reflect.deleteProperty(r.instance, t), "deleteProperty"), apply: /* @__PURE__ */ __name((r, t, e) => Reflect.apply(r.instance, t, e), "apply"), construct: /* @__PURE__ */ __name((r, t, e) => Reflect.construct(r.instance, t, e), "construct"), getPrototypeOf: /* @__PURE__ */ __name((r) => Reflect.getPrototypeOf(r.instance), "getPrototypeOf"), setPrototypeOf: /* @__PURE__ */ __name((r, t) => Reflect.setPrototypeOf(r.instance, t), "setPrototypeOf"), isExtensible: /* @__PURE__ */ __name((r) => Reflect.isExtensible(r.instance), "isExtensible"), preventExtensions: /* @__PURE__ */ __name((r) => Reflect.preventExtensions(r.instance), "preventExtensions"), getOwnPropertyDescriptor: /* @__PURE__ */ __name((r, t) => Reflect.getOwnPropertyDescriptor(r.instance, t), "getOwnPropertyDescriptor"), defineProperty: /* @__PURE__ */ __name((r, t, e) => Reflect.defineProperty(r.instance, t, e), "defineProperty"), ownKeys: /* @__PURE__ */ __name((r) => Reflect.ownKeys(r.instance), "ownKeys") };
var M = { construct(r, t, e) {
  try {
    $();
    let n = { instance: Reflect.construct(r, t, e), instanceId: y.instanceId, ctor: r, args: t, newTarget: e };
    return new Proxy(n, { ...pt, get(_, a, f) {
      _.instanceId !== y.instanceId && (_.instance = Reflect.construct(_.ctor, _.args, _.newTarget), _.instanceId = y.instanceId);
      let d = Reflect.get(_.instance, a, f);
      return typeof d != "function" ? d : d.constructor === Function ? new Proxy(d, { apply(l, P, B) {
        $();
        try {
          return l.apply(P, B);
        } catch (E) {
          throw J(E), E;
        }
      } }) : new Proxy(d, { async apply(l, P, B) {
        $();
        try {
          return await l.apply(P, B);
        } catch (E) {
          throw J(E), E;
        }
      } });
    } });
  } catch (n) {
    throw y.criticalError = true, n;
  }
} };
var xt = new Proxy(S, M);
var Et = new Proxy(v, M);
var Rt = new Proxy(I, M);
var Ft = new Proxy(x, M);

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

// .wrangler/tmp/bundle-HlZqCq/middleware-insertion-facade.js
var __INTERNAL_WRANGLER_MIDDLEWARE__ = [
  middleware_ensure_req_body_drained_default,
  middleware_miniflare3_json_error_default
];
var middleware_insertion_facade_default = xt;

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

// .wrangler/tmp/bundle-HlZqCq/middleware-loader.entry.ts
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
  Et as ContainerStartupOptions,
  Rt as MinifyConfig,
  Ft as R2Range,
  __INTERNAL_WRANGLER_MIDDLEWARE__,
  middleware_loader_entry_default as default
};
//# sourceMappingURL=index.js.map
