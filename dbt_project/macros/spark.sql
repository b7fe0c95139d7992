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

{#- Values present and distinct values of each input column, one row per column
    (DuckDB unnests a list of structs; elsewhere one union branch per column). -#}
{% macro column_value_counts(columns, relation) -%}
    {{ return(adapter.dispatch('column_value_counts')(columns, relation)) }}
{%- endmacro %}

{% macro default__column_value_counts(columns, relation) -%}
    {%- for column in columns %}
    select
        {{ sql_string(column.name) }} as loaded_as,
        count({{ clean_text(sql_identifier(column.name)) }}) as values_present,
        count(distinct {{ clean_text(sql_identifier(column.name)) }}) as distinct_values
    from {{ relation }}
    {{ "union all" if not loop.last }}
    {%- endfor %}
{%- endmacro %}

{% macro duckdb__column_value_counts(columns, relation) -%}
    select
        unnest([
            {% for column in columns %}
            {
                'loaded_as': {{ sql_string(column.name) }},
                'values_present': count({{ clean_text(sql_identifier(column.name)) }}),
                'distinct_values': count(distinct {{ clean_text(sql_identifier(column.name)) }})
            }{{ "," if not loop.last }}
            {% endfor %}
        ], recursive := true)

    from {{ relation }}
{%- endmacro %}
