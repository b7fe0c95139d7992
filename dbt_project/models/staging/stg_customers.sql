{#- One typed column per declared column (docs/declaration.md), its cleaned text
    (`<name>__text`, so that "missing" and "unreadable" differ downstream) and its value
    exactly as exported (`source_<name>`, for the quarantine report). -#}
{%- set columns = declaration().columns -%}

with

source as (

    select * from {{ source('raw', 'customers') }}

),

folded as (

    -- white space folded once per value (see missing_as_null)
    select
        source_row_number,
        {%- for column in columns %}
        {{ squish(sql_identifier(column.column)) }} as {{ column.name }}__folded,
        cast({{ sql_identifier(column.column) }} as {{ dbt.type_string() }}) as source_{{ column.name }}{{ "," if not loop.last }}
        {%- endfor %}

    from source

),

cleaned as (

    select
        source_row_number,
        {%- for column in columns %}
        {{ missing_as_null(column.name ~ '__folded', column.missing) }} as {{ column.name }}__text,
        source_{{ column.name }}{{ "," if not loop.last }}
        {%- endfor %}

    from folded

),

typed as (

    select
        *,
        {%- for column in columns %}
        {#- try_cast: a number too large for an integer column reads as unparseable, not as an error #}
        try_cast({{ typed_value(column, column.name ~ '__text') }} as {{ column_type(column) }}) as {{ column.name }}{{ "," if not loop.last }}
        {%- endfor %}

    from cleaned

)

select * from typed
