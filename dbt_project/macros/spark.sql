{#- Spark (dbt-spark) implementations of what differs from DuckDB. The models and their
    YAML are the same on both engines; only these dispatched macros change. -#}

{#- The contracts' YAML names DuckDB's types; Spark has no bare VARCHAR (it needs a length)
    and calls it STRING. dbt builds each contract's expected schema with `cast(null as <type>)`,
    so translating here is enough: both sides of the contract check are then Spark's types. -#}
{% macro spark_type(type) -%}
    {%- set aliases = {'varchar': 'string', 'text': 'string'} -%}
    {{- aliases.get(type | trim | lower, type) -}}
{%- endmacro %}

{% macro spark__cast(field, type) -%}
    cast({{ field }} as {{ spark_type(type) }})
{%- endmacro %}

